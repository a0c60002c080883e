"""Learners: iterates stay feasible (hypothesis), converge to the exact equilibrium on the
array path and through the PettingZoo env; schedules and argument errors."""

from itertools import islice

import numpy as np
import pytest
from hypothesis_compat import given, settings, st

from agents import (
    BestResponse,
    EntropicMirrorDescent,
    EuclideanMirrorDescent,
    Hedge,
    LogitBestResponse,
    PowerSchedule,
    play,
    play_env,
)
from incentive_envs import AggregativeGame, AggregativeParams, CournotGame, CournotParams, cournot_v0
from incentive_envs.core import IncentiveGame, IncentiveSet, SocialOptimum, StrategySet

block_sizes = st.lists(st.integers(1, 6), min_size=1, max_size=6)


def _simplex_point(sizes, rng):
    blocks = [rng.dirichlet(np.ones(size)) for size in sizes]
    return np.concatenate(blocks)


@given(
    block_sizes, st.integers(0, 2**31 - 1), st.floats(1e-3, 50.0), st.floats(0.0, 0.9), st.floats(1.0, 1e4)
)
@settings(max_examples=200, deadline=None)
def test_entropic_iterates_stay_on_the_simplex(sizes, seed, step, mixing, magnitude):
    rng = np.random.default_rng(seed)
    simplex = StrategySet("simplex", tuple(sizes))
    learner = EntropicMirrorDescent(simplex, PowerSchedule(step, 0.5), PowerSchedule(mixing, 0.5))
    x = _simplex_point(sizes, rng)
    for k in range(20):
        x = learner.step(x, k, magnitude * rng.standard_normal(simplex.dim))
        assert np.all(np.isfinite(x)) and np.all(x >= 0)
        np.testing.assert_allclose(simplex.block_sum(x), 1.0, atol=1e-12)
    if mixing > 0:  # the mixing step keeps every coordinate away from the boundary
        assert np.all(x >= learner.mixing(19) / np.repeat(sizes, sizes) - 1e-15)


@given(st.integers(1, 20), st.integers(0, 2**31 - 1), st.floats(1e-3, 10.0))
@settings(max_examples=100, deadline=None)
def test_euclidean_iterates_stay_in_the_box(n, seed, step):
    rng = np.random.default_rng(seed)
    lower, upper = rng.uniform(-5, 0, n), rng.uniform(0.1, 5, n)
    box = StrategySet("box", (1,) * n, lower, upper)
    learner = EuclideanMirrorDescent(box, step)
    x = rng.uniform(lower, upper)
    for k in range(10):
        x = learner.step(x, k, 100 * rng.standard_normal(n))
        assert box.contains(x, atol=0.0)


def _reference_simplex_projection(y):
    """Textbook sort-based projection of one vector onto the simplex (Duchi et al. 2008)."""
    u = np.sort(y)[::-1]
    cumulative = np.cumsum(u)
    rho = np.nonzero(u * np.arange(1, len(y) + 1) > cumulative - 1)[0][-1]
    return np.maximum(y - (cumulative[rho] - 1) / (rho + 1.0), 0)


@given(block_sizes, st.integers(0, 2**31 - 1))
@settings(max_examples=100, deadline=None)
def test_simplex_projection_matches_the_reference_and_is_idempotent(sizes, seed):
    rng = np.random.default_rng(seed)
    simplex = StrategySet("simplex", tuple(sizes))
    y = 3 * rng.standard_normal(simplex.dim)
    projected = simplex.project(y)
    expected = np.concatenate([_reference_simplex_projection(y[block]) for block in simplex.agent_slices])
    np.testing.assert_allclose(projected, expected, atol=1e-12)
    np.testing.assert_allclose(simplex.project(projected), projected, atol=1e-12)


@pytest.mark.parametrize(
    "make_learner",
    [
        lambda game: EuclideanMirrorDescent(game.strategy_set, 0.015),
        lambda game: EuclideanMirrorDescent(game.strategy_set, PowerSchedule(0.019, 0.05)),
        lambda game: BestResponse(game.strategy_set, 0.03),
    ],
    ids=["gradient-constant", "gradient-decaying", "best-response"],
)
def test_learners_converge_to_the_exact_equilibrium_on_cournot(make_learner):
    game = CournotGame(CournotParams.paper(n=100, k=0.5))
    theta = np.linspace(0.0, 40.0, 100)
    *_, x = islice(play(game, make_learner(game), theta), 4000)
    np.testing.assert_allclose(x, game.equilibrium(theta), atol=1e-8)


def test_learner_converges_through_the_pettingzoo_env():
    env = cournot_v0.parallel_env(n_firms=30, k=1.0, max_cycles=3000, feedback=("gradient", "best_response"))
    game = env.game
    theta = np.linspace(0.0, 50.0, 30)
    learner = EuclideanMirrorDescent(game.strategy_set, 1.0 / 32)
    for x, rewards in play_env(env, learner, seed=0, incentive=theta):
        pass
    np.testing.assert_allclose(x, game.equilibrium(theta), atol=1e-8)
    np.testing.assert_allclose([rewards[a] for a in env.possible_agents], game.rewards(x, theta), rtol=1e-6)
    for x, _ in play_env(env, BestResponse(game.strategy_set, 0.1), seed=0, incentive=theta):
        pass
    np.testing.assert_allclose(x, game.equilibrium(theta), atol=1e-8)


class _TwoRoutes(IncentiveGame):
    """One population splitting over two routes with costs 1 + 2y₁ and 2 + y₂ (y = the
    split) plus toll θ on route 1; Wardrop equilibrium: 1 + 2y₁ + θ = 2 + (1 − y₁)."""

    strategy_set = StrategySet("simplex", (2,))
    incentive_set = IncentiveSet(np.zeros(1), np.ones(1))

    def _rewards(self, x, theta):
        raise ValueError("not needed by these tests")

    def _pseudo_gradient(self, x, theta):
        return -np.array([1 + 2 * x[0] + theta[0], 2 + x[1]])

    def _jvp_x(self, x, theta, tangent):
        return -np.array([2 * tangent[0], tangent[1]])

    _vjp_x = _jvp_x

    def _jvp_theta(self, x, theta, tangent):
        return -np.array([tangent[0], 0.0])

    def _vjp_theta(self, x, theta, cotangent):
        return -cotangent[:1]

    def _equilibrium(self, theta):
        share = (2.0 - theta[0]) / 3.0
        return np.array([share, 1 - share])

    def _social_cost(self, x, theta):
        return 0.0

    def _social_cost_grad_x(self, x, theta):
        return np.zeros(2)

    def _social_cost_grad_theta(self, x, theta):
        return np.zeros(1)

    def social_optimum(self):
        return SocialOptimum(0.0, np.zeros(2))


def test_entropic_mirror_descent_converges_with_vanishing_mixing():
    game = _TwoRoutes()
    theta = np.array([0.5])
    learner = EntropicMirrorDescent(game.strategy_set, 0.5, PowerSchedule(0.5, 1.0))
    *_, x = islice(play(game, learner, theta), 5000)
    np.testing.assert_allclose(x, game.equilibrium(theta), atol=1e-3)


def test_payoff_learners_reach_the_equilibrium_up_to_the_grid():
    game = AggregativeGame(AggregativeParams.default(n=10))
    theta = np.zeros(10)
    target = game.equilibrium(theta)
    *_, x = islice(play(game, LogitBestResponse(game.strategy_set, 0.01, 0.2, 2001), theta), 500)
    np.testing.assert_allclose(x, target, atol=1e-6)
    *_, x = islice(play(game, Hedge(game.strategy_set, 1.0, 2001), theta), 3000)
    np.testing.assert_allclose(x, target, atol=0.02)


def test_schedules_and_argument_errors():
    schedule = PowerSchedule(0.6, 2 / 3)
    assert schedule(0) == 0.6 and schedule(7) == pytest.approx(0.6 / 8 ** (2 / 3))
    for kwargs in ({"scale": -1.0}, {"scale": 1.0, "power": -0.5}, {"scale": np.nan}):
        with pytest.raises(ValueError):
            PowerSchedule(**kwargs)
    with pytest.raises(ValueError, match="k must"):
        schedule(-1)
    box = StrategySet("box", (1, 1), np.zeros(2), np.ones(2))
    with pytest.raises(ValueError, match="simplex"):
        EntropicMirrorDescent(box, 0.1)
    with pytest.raises(ValueError, match="mixing"):
        EntropicMirrorDescent(StrategySet("simplex", (2,)), 0.1, 1.0)
    with pytest.raises(ValueError, match="step_size"):
        BestResponse(box, 1.5)
    with pytest.raises(ValueError, match="grid_size"):
        Hedge(box, 0.1, grid_size=1)
    with pytest.raises(ValueError, match="finite"):
        LogitBestResponse(StrategySet("box", (1,), np.zeros(1), np.full(1, np.inf)))
    game = CournotGame(CournotParams.paper(n=3))
    with pytest.raises(ValueError, match="rng"):
        next(play(game, EuclideanMirrorDescent(game.strategy_set, 0.1), np.zeros(3), noise_std=1.0))


def test_noisy_play_is_reproducible_with_a_seeded_generator():
    game = CournotGame(CournotParams.paper(n=10))
    learner = EuclideanMirrorDescent(game.strategy_set, 0.05)
    runs = [
        list(islice(play(game, learner, np.zeros(10), rng=np.random.default_rng(5), noise_std=1.0), 50))
        for _ in range(2)
    ]
    assert all(np.array_equal(a, b) for a, b in zip(*runs))
    other = list(islice(play(game, learner, np.zeros(10), rng=np.random.default_rng(6), noise_std=1.0), 50))
    assert not np.array_equal(runs[0][-1], other[-1])
