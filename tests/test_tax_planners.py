"""Tax economy planners: the schedule baselines through the registry and the engine, Saez's
rates against an independent solve, the episodic task (conformance, rewards and objective
against the model, torch mirror), the meta-gradient over the rates against finite
differences, the dual-RL planner, determinism and validation (the results script is tested in
test_tax_economy.py)."""

import numpy as np
import pytest
import torch

from agents.policy_gradient import PolicyGradientLearners, reinforce_surrogate, returns_to_go
from agents.registry import spec as learner_spec
from incentive_envs import TaxEconomyGame, TaxEconomyParams, registry
from incentive_envs.episodic import ScheduleTask, check_task, replay
from incentive_envs.tax_economy.game import (
    bracket_incomes,
    equality_times_productivity,
    rank_weights,
    saez_rates,
    us_federal_rates,
)
from incentive_envs.tax_economy.task import TaxEconomyTask
from planners.engine import simulate
from planners.meta_gradient import MetaGradientDesigner, ScheduleDesign, meta_gradient, meta_objective
from planners.registry import combinations
from planners.registry import spec as planner_spec
from planners.rl_planner import RLPlanner


def _game(n=30, seed=0):
    return TaxEconomyGame(TaxEconomyParams.pareto(n, seed=seed))


# -- the registry and the engine ------------------------------------------------------------------
def test_every_planner_of_the_issue_applies_to_the_tax_economy():
    tax = {(learner, planner) for game, learner, planner in combinations() if game == "tax_economy"}
    for planner in ("free_market", "us_federal", "saez", "single_loop", "zeroth_order"):
        assert {(learner, planner) for learner in ("gradient", "best_response", "hedge", "logit")} <= tax
    assert {("policy_gradient", "meta_gradient"), ("policy_gradient", "rl_planner")} <= tax
    # model planners never steer policy-gradient workers; schedule baselines need a tax schedule
    assert not any(learner == "policy_gradient" and planner == "single_loop" for learner, planner in tax)
    assert "tax_schedule" in planner_spec("saez").requires
    assert not any(planner == "saez" for game, _, planner in combinations() if game != "tax_economy")
    assert registry()["tax_economy_v0"].capabilities >= {"episodic", "tax_schedule", "model"}


@pytest.mark.parametrize(
    "name, rates",
    [
        ("free_market", lambda game: np.zeros(7)),
        ("us_federal", us_federal_rates),
        ("saez", saez_rates),
    ],
)
def test_schedule_baselines_post_their_rates_through_the_engine(name, rates):
    game = registry()["tax_economy_v0"].make_game(n_workers=30)
    learner = learner_spec("best_response").make(game, 0)
    planner = planner_spec(name).make(game, learner, 0)
    records = list(simulate(game, learner, planner, iterations=3, metrics=()))
    for record in records:
        np.testing.assert_array_equal(record.estimate, rates(game))


# -- Saez ---------------------------------------------------------------------------------------
def test_saez_rates_solve_the_bracket_optimality_conditions_independently():
    """The N = 1000 default instance has every Saez rate inside (0, 1): the rates must solve the
    full (not back-substituted) linear system ζ^c Z_b ρ_b − η_I Σ_{b'} S_{bb'} ρ_{b'} = Σ_i (1 − g_i) m_b(z_i)
    of Saez (2001), built here from the free-market equilibrium with a dense solve."""
    game = _game(1000, 0)
    state = game.equilibrium_state(np.zeros(7))
    shares = bracket_incomes(state.income, game.params.cutoffs)
    weights = rank_weights(state.coin)
    inside = np.array([state.income[state.bracket == b].sum() for b in range(7)])
    spill = np.array([[shares[state.bracket == c, b].sum() for c in range(7)] for b in range(7)])
    matrix = np.diag(inside / game.params.eta) - spill  # income effect η_I = 1
    ratio = np.linalg.solve(matrix, (1.0 - weights) @ shares)
    expected = ratio / (1.0 + ratio)
    assert np.all((expected > 0) & (expected < 1))
    np.testing.assert_allclose(saez_rates(game), expected, rtol=1e-10)


# -- the episodic task --------------------------------------------------------------------------
def test_task_conforms_and_its_rewards_and_objective_follow_the_model():
    game = _game(12, 1)
    task = TaxEconomyTask(game, labour_levels=5, schedule=us_federal_rates(game))
    assert isinstance(task, ScheduleTask)
    check_task(task, batch_size=3)
    rng = np.random.default_rng(0)
    actions = rng.integers(5, size=(4, 12))
    state, rewards, done = task.step(task.reset(4, rng), actions, rng)
    assert done.all() and rewards.dtype == np.float64
    for b in range(4):  # each episode is one economy with its own lump sum
        np.testing.assert_allclose(
            rewards[b], game.rewards(task.labour[actions[b]], task.schedule), rtol=1e-12
        )
    learners = PolicyGradientLearners(task, 0.1, dtype=torch.float64)
    rollout = learners.sample(6, rng)
    rates = torch.as_tensor(task.schedule)
    np.testing.assert_allclose(task.schedule_rewards(rollout, rates).numpy(), rollout.env_rewards, rtol=1e-12)
    expected = [
        equality_times_productivity(game.coin(task.labour[a], task.schedule)) for a in rollout.actions[:, 0]
    ]
    np.testing.assert_allclose(task.schedule_objective(rollout, rates).numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(task.objective(rollout), expected, rtol=1e-6)  # rates read back as float32


def test_registry_builds_the_task_for_policy_gradient_learners():
    entry = registry()["tax_economy_v0"]
    task = entry.make_task(n_workers=7, labour_levels=3)
    assert isinstance(task, TaxEconomyTask) and task.n_agents == 7 and task.n_actions == 3
    assert isinstance(entry.make_game(n_workers=7), TaxEconomyGame)


# -- the meta-gradient over the rates ---------------------------------------------------------------
def test_meta_gradient_over_the_rates_matches_central_finite_differences():
    game = _game(8, 2)
    task = TaxEconomyTask(game, labour_levels=4, schedule=[0.1, 0.2, 0.3, 0.35, 0.4, 0.45, 0.5])
    learners = PolicyGradientLearners(
        task, 0.3, entropy_coef=0.1, init_scale=0.3, seed=1, dtype=torch.float64
    )
    design = ScheduleDesign(task, torch.float64)
    rng = np.random.default_rng(0)
    # nobody idle: distinct skills then give distinct coin (the objective's rank weights have
    # kinks where two workers' coin tie, e.g. two idle workers)
    train, validation = (replay(task, rng.integers(1, 4, size=(5, 1, 8)), rng) for _ in range(2))

    weights = design.designer_rewards(validation).detach()  # G at the current rates, frozen

    def value():
        """V(θ) recomputed from the public pieces, the score weights G frozen (the designer
        detaches them: the gradient of E[G] is the score term plus the pathwise term)."""
        with torch.enable_grad():
            rewards = task.schedule_rewards(train, design.rates.detach())
            updated = learners.updated(learners.params, train, rewards)
        log_probs = learners.log_probs(updated, validation).sum(-1)
        alive = torch.as_tensor(validation.alive, dtype=torch.float64)
        score = reinforce_surrogate(log_probs, returns_to_go(weights), alive, baseline=True)
        return (score + design.designer_rewards(validation).sum() / 5).item()

    assert value() == pytest.approx(
        meta_objective(learners, learners.params, design, train, validation, 0.0).item(), rel=1e-12
    )
    (gradient,) = meta_gradient(learners, learners.params, design, train, validation, 0.0)
    h = 1e-6
    for j in range(7):
        original = design.rates.data[j].item()
        design.rates.data[j] = original + h
        plus = value()
        design.rates.data[j] = original - h
        minus = value()
        design.rates.data[j] = original
        np.testing.assert_allclose(gradient[j].item(), (plus - minus) / (2 * h), rtol=1e-5, atol=1e-6)
    assert np.count_nonzero(np.abs(gradient.numpy()) > 1e-3) >= 2  # 8 workers reach 3 brackets


def test_meta_gradient_designer_moves_the_task_schedule_and_is_deterministic():
    def run(seed):
        task = TaxEconomyTask(_game(10, 0), labour_levels=5)
        learners = PolicyGradientLearners(task, 0.5, seed=seed)
        designer = MetaGradientDesigner(learners, batch_size=4, designer_lr=0.05, seed=seed)
        history = designer.train(5)
        assert np.all((task.schedule >= 0) & (task.schedule <= 1))
        return task.schedule.copy(), history["objective"]

    first, second = run(3), run(3)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert np.any(first[0] > 0)  # the rates moved from the free market


def test_meta_gradient_designer_resumes_the_schedule_from_its_state():
    task = TaxEconomyTask(_game(6, 0), labour_levels=3)
    designer = MetaGradientDesigner(PolicyGradientLearners(task, 0.5), batch_size=3, designer_lr=0.05)
    designer.train(3)
    state, rates = designer.state_dict(), task.schedule.copy()
    designer.train(2)
    designer.load_state_dict(state)
    np.testing.assert_array_equal(task.schedule, rates)


# -- the meta-gradient through the followers' fixed point ---------------------------------------------
def test_soft_response_objective_matches_central_finite_differences():
    task = TaxEconomyTask(_game(40, 1), labour_levels=6)
    rates = torch.tensor([0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6], dtype=torch.float64, requires_grad=True)
    (gradient,) = torch.autograd.grad(task.soft_response_objective(rates, 0.3), rates)

    def value(shifted):
        return task.soft_response_objective(shifted, 0.3).item()

    h = 1e-6
    for j in range(7):
        step = torch.zeros(7, dtype=torch.float64)
        step[j] = h
        finite = (value(rates.detach() + step) - value(rates.detach() - step)) / (2 * h)
        np.testing.assert_allclose(gradient[j].item(), finite, rtol=1e-6, atol=1e-6)
    assert np.count_nonzero(np.abs(gradient.numpy()) > 1.0) >= 4


def test_soft_response_of_uniform_workers_is_the_budget_balanced_economy_by_hand():
    """At a huge temperature every worker mixes uniformly: expected labour is the grid's mean
    ``L̄/2``, and the lump sum returns exactly the revenue it raises (``T = mean τ``)."""
    game = _game(12, 3)
    task = TaxEconomyTask(game, labour_levels=5)
    rates = np.array([0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6])
    labour = np.full(12, game.params.max_labour / 2)
    expected = equality_times_productivity(game.coin(labour, rates))  # game.coin: T = mean tax
    value = task.soft_response_objective(torch.tensor(rates), 1e12).item()
    assert value == pytest.approx(expected, rel=1e-9)


def test_soft_response_at_a_low_temperature_approaches_the_exact_equilibrium():
    """Cold soft best responses are hard best responses on the labour grid: with a fine grid the
    objective approaches equality × productivity at the exact (continuous) equilibrium."""
    game = _game(30, 0)
    task = TaxEconomyTask(game, labour_levels=2001)
    rates = us_federal_rates(game)
    exact = equality_times_productivity(game.equilibrium_state(rates).coin)
    cold = task.soft_response_objective(torch.tensor(rates), 1e-4).item()
    assert cold == pytest.approx(exact, rel=2e-3)


def test_fixed_point_designer_climbs_the_soft_response_objective_and_resumes_exactly():
    def designer(seed=3):
        task = TaxEconomyTask(_game(20, 0), labour_levels=6)
        learners = PolicyGradientLearners(task, 0.5, entropy_coef=0.1, seed=seed)
        return MetaGradientDesigner(
            learners, batch_size=4, designer_lr=0.02, response="fixed_point", seed=seed
        )

    first = designer()
    start = first.learners.task.soft_response_objective(torch.zeros(7, dtype=torch.float64), 0.1).item()
    history = first.train(30)
    task = first.learners.task
    reached = task.soft_response_objective(torch.tensor(task.schedule), 0.1).item()
    assert reached > start * 1.02 and np.any(task.schedule > 0.1)
    assert np.all((task.schedule >= 0) & (task.schedule <= 1))
    second = designer()
    np.testing.assert_array_equal(second.train(30)["objective"], history["objective"])
    np.testing.assert_array_equal(second.learners.task.schedule, task.schedule)
    state = first.state_dict()
    ahead = first.train(3)
    first.load_state_dict(state)
    np.testing.assert_array_equal(first.train(3)["objective"], ahead["objective"])


@pytest.mark.parametrize(
    "make, name",
    [
        (
            lambda task: MetaGradientDesigner(PolicyGradientLearners(task, 0.5), response="fixed_point"),
            "entropy_coef",
        ),
        (
            lambda task: MetaGradientDesigner(
                PolicyGradientLearners(task, 0.5, entropy_coef=0.1), response="two_step"
            ),
            "response",
        ),
        (lambda task: task.soft_response_objective(torch.zeros(7, dtype=torch.float64), 0.0), "temperature"),
        (lambda task: task.soft_response_objective(torch.zeros(7), 0.1), "rates"),
        (lambda task: task.soft_response_objective(torch.full((7,), 1.5, dtype=torch.float64), 0.1), "rates"),
        (lambda task: planner_spec("meta_gradient").make_config(response="implicit"), "response"),
    ],
)
def test_fixed_point_designer_refuses_bad_input_naming_it(make, name):
    task = TaxEconomyTask(_game(5, 0), labour_levels=3)
    with pytest.raises(ValueError, match=name):
        make(task)


@pytest.mark.parametrize(
    "make",
    [
        lambda task: planner_spec("meta_gradient").make_config(pay_per="cell"),
        lambda task: MetaGradientDesigner(PolicyGradientLearners(task, 0.5), pay_per="event"),
    ],
)
def test_event_pricing_is_refused_when_unknown_or_on_a_schedule_task(make):
    with pytest.raises(ValueError, match="pay_per"):
        make(TaxEconomyTask(_game(5, 0), labour_levels=3))


def test_fixed_point_response_needs_a_schedule_task():
    from incentive_envs.escape_room.game import EscapeRoomTask

    learners = PolicyGradientLearners(EscapeRoomTask(2, 1), 0.1, entropy_coef=0.1)
    with pytest.raises(ValueError, match="response"):
        MetaGradientDesigner(learners, response="fixed_point")


def test_rl_planner_posts_schedules_and_is_deterministic():
    def run():
        task = TaxEconomyTask(_game(6, 0), labour_levels=3)
        planner = RLPlanner(
            PolicyGradientLearners(task, 0.5),
            batch_size=2,
            seed=4,
            ppo_kwargs={"n_steps": 4, "batch_size": 4},
        )
        history = planner.train(6)
        assert np.all((task.schedule >= 0) & (task.schedule <= 1))
        return history["objective"], task.schedule.copy()

    first, second = run(), run()
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


# -- kinks of the single loop's linearisation ---------------------------------------------------------
def test_workers_facing_a_full_rate_are_held_fixed_by_the_linearisation():
    game = _game(10, 0)
    theta = np.array([0.0, 0.0, 1.0, 0.2, 0.2, 0.2, 0.2])
    x = np.full(10, 50.0)
    k = np.searchsorted(game.params.cutoffs, game.params.skill * x, side="right") - 1
    pinned = game._pinned_coordinates(x, theta)
    assert pinned is not None
    np.testing.assert_array_equal(pinned[k == 2], True)
    np.testing.assert_array_equal(game._jacobian_x_structure(x, theta).diagonal[k == 2], 0.0)


# -- validation -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: TaxEconomyTask(_game(4), labour_levels=1), "labour_levels"),
        (lambda: TaxEconomyTask(_game(4), schedule=[0.1] * 6), "rates"),
        (lambda: TaxEconomyTask(_game(4)).set_schedule([0.1] * 6 + [1.5]), "rates"),
        (lambda: TaxEconomyTask(_game(4)).set_schedule([np.nan] * 7), "rates"),
        (lambda: TaxEconomyTask("economy"), "game"),
        (lambda: ScheduleDesign(object()), "task"),
        (lambda: registry()["tax_economy_v0"].make_task(labour_levels=0), "labour_levels"),
        (
            lambda: TaxEconomyTask(_game(4)).step(
                np.zeros((1, 7)), np.full((1, 4), 21), np.random.default_rng(0)
            ),
            "actions",
        ),
    ],
)
def test_bad_inputs_raise_value_errors_naming_them(make, name):
    with pytest.raises(ValueError, match=name):
        make()


def test_sb3_ppo_workers_under_one_shared_planner_across_copies():
    """SB3 PPO workers (one shared policy) on two copies of the economy, steered by one
    planner through the shared-planner vector env: every copy plays the
    same schedule, the planner (SPSA) updates once per K rounds, and a seeded run reproduces."""
    from stable_baselines3 import PPO

    from agents.registry import spec as learner_spec
    from incentive_envs import make
    from planners.shared import SharedPlanner, SharedPlannerVecEnv

    def run():
        game = make("tax_economy_v0", n_workers=4, max_cycles=32).game
        planner = planner_spec("zeroth_order").make(game, learner_spec("gradient").make(game), seed=0)
        shared = SharedPlanner(planner, 16)
        vec = SharedPlannerVecEnv(lambda: make("tax_economy_v0", n_workers=4, max_cycles=32), 2, shared)
        vec.seed(3)
        model = PPO("MlpPolicy", vec, n_steps=32, batch_size=64, n_epochs=2, seed=3, device="cpu")
        model.learn(256)
        return shared, vec

    shared, vec = run()
    assert shared.updates == 256 // (2 * 4) // 16  # rounds (timesteps / workers in all copies) / K
    incentives = [copy.incentive for copy in vec.copies]
    assert np.array_equal(incentives[0], incentives[1]) and np.any(incentives[0] > 0.0)
    assert np.all((0.0 <= incentives[0]) & (incentives[0] <= 1.0))
    _, again = run()
    np.testing.assert_array_equal(again.copies[0].incentive, incentives[0])
