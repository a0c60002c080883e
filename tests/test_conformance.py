"""The shipped conformance suite (incentive_envs.testing) over every registry entry: a new game,
learner or planner is checked here without new test code."""

import pytest

from agents.registry import registry as learner_registry
from incentive_envs import registry as env_registry
from incentive_envs.testing import ConformanceError, check_env, check_game, check_learner, check_planner
from planners import PlannerWrapper
from planners.registry import registry as planner_registry
from planners.registry import valid

SMALL = {
    "cournot": {"n_firms": 6, "k": 1.0},
    "aggregative": {"n_agents": 6},
    "oscillators": {"n_agents": 6},
    "congestion": {"network": "braess"},
    "escape_room": {"n_agents": 10, "threshold": 9},
    "cleanup": {},
    "tax_economy": {"n_workers": 6},
}
"""Small instances of every registered game (the suite also checks that every game has one).
Escape Room's ER(10, 9) lets PettingZoo's max_cycles_test see whole horizons: with its seeded
random actions nine of ten agents never pick the lever at once."""

ENVS = list(env_registry().values())
MODEL_GAMES = [spec for spec in ENVS if "model" in spec.capabilities]


def test_every_registered_game_has_a_small_instance_here():
    assert {spec.game for spec in ENVS} == set(SMALL)


@pytest.mark.parametrize("spec", MODEL_GAMES, ids=lambda spec: spec.game)
def test_game_models_conform(spec):
    check_game(spec.make_game(**SMALL[spec.game]))


@pytest.mark.parametrize("spec", MODEL_GAMES, ids=lambda spec: spec.game)
def test_declared_capabilities_match_the_model(spec):
    game = spec.make_game(**SMALL[spec.game])
    assert ("box" in spec.capabilities) == (game.strategy_set.kind == "box")
    assert ("simplex" in spec.capabilities) == (game.strategy_set.kind == "simplex")
    assert ("linear_prices" in spec.capabilities) == game.linear_prices
    assert ("best_response" in spec.capabilities) == game.has_best_response
    assert ("payoffs" in spec.capabilities) == game.has_payoffs


@pytest.mark.parametrize("spec", ENVS, ids=lambda spec: spec.env_id)
def test_envs_conform(spec):
    check_env(lambda **kwargs: spec.make_env(**{**SMALL[spec.game], "max_cycles": 30, **kwargs}))


@pytest.mark.parametrize("spec", MODEL_GAMES, ids=lambda spec: spec.env_id)
def test_envs_conform_through_the_planner_wrapper(spec):
    planner = planner_registry()["zeroth_order"]
    learner = learner_registry()["gradient"]

    def wrapped(**kwargs):
        env = spec.make_env(**{**SMALL[spec.game], "max_cycles": 30, **kwargs})
        return PlannerWrapper(env, planner.make(env.game, learner.make(env.game), seed=0, probe_steps=2), 3)

    check_env(wrapped)


LEARNER_CASES = [
    (learner, game)
    for learner in learner_registry().values()
    for game in MODEL_GAMES
    if learner.requires <= game.capabilities and "episodic" not in learner.requires  # rollout learners:
]  # checked on their episodic tasks (tests/test_meta_gradient.py, tests/test_tax_planners.py)


@pytest.mark.parametrize(
    "learner, game", LEARNER_CASES, ids=lambda item: getattr(item, "name", getattr(item, "game", ""))
)
def test_learners_conform(learner, game):
    model = game.make_game(**SMALL[game.game])
    check_learner(lambda: learner.make(model), model)


def _first_valid_learner(game, planner):
    return next((learner for learner in learner_registry().values() if valid(game, learner, planner)), None)


PLANNER_CASES = [
    (planner, game, _first_valid_learner(game, planner))
    for planner in planner_registry().values()
    for game in MODEL_GAMES
    if _first_valid_learner(game, planner) is not None and "episodic" not in planner.requires
]


@pytest.mark.parametrize(
    "planner, game, learner", PLANNER_CASES, ids=lambda item: getattr(item, "name", getattr(item, "game", ""))
)
def test_planners_conform(planner, game, learner):
    model = game.make_game(**SMALL[game.game])
    params = {"max_inner": 50} if "max_inner" in planner.parameters() else {}  # state, not convergence
    check_planner(
        lambda: planner.make(model, learner.make(model), seed=0, **params), model, lambda: learner.make(model)
    )


def test_the_suite_catches_a_wrong_jacobian_product():
    from incentive_envs import CournotGame, CournotParams

    class Broken(CournotGame):
        def _jvp_x(self, x, theta, tangent):
            return 1.01 * super()._jvp_x(x, theta, tangent)

    with pytest.raises(ConformanceError, match="jvp_x"):
        check_game(Broken(CournotParams.paper(n=5, k=1.0)))
