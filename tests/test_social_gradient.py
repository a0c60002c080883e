"""Social-gradient planner: the continuous flow decreases the social cost and converges to the
Pigouvian price; the discrete two-timescale scheme gets there with different learners."""

import time

import numpy as np
import pytest

from agents import BestResponse, EuclideanMirrorDescent, LogitBestResponse, jacobian_norm
from incentive_envs import (
    AggregativeGame,
    AggregativeParams,
    CournotGame,
    CournotParams,
    OscillatorGame,
    OscillatorParams,
)
from incentive_envs.core import IncentiveSet
from planners.social_gradient import SocialGradientPlanner, social_gradient_flow


def _instances():
    rng = np.random.default_rng(2024)
    for seed in range(3):  # random strongly monotone instances with interior optima
        yield AggregativeGame(
            AggregativeParams.default(
                n=12, seed=seed, beta=rng.uniform(0.2, 0.6), kappa=rng.uniform(0.2, 0.6)
            )
        )
        yield OscillatorGame(OscillatorParams.default(n=12, seed=seed, coupling=rng.uniform(0.05, 0.2)))


@pytest.mark.parametrize("game", list(_instances()), ids=lambda g: repr(g))
def test_flow_decreases_social_cost_and_converges_to_the_pigouvian_price(game):
    first_best = game.first_best_incentive()
    assert first_best.unique, "the instance must have an interior optimum"
    times = np.linspace(0.0, 40.0, 81)
    solution = social_gradient_flow(game, np.zeros(game.incentive_set.dim), 40.0, t_eval=times)
    costs = np.array([game.equilibrium_social_cost(theta) for theta in solution.y.T])
    assert np.all(np.diff(costs) <= 1e-9 * np.abs(costs[:-1]).max())
    assert costs[-1] < costs[0]
    np.testing.assert_allclose(solution.y[:, -1], first_best.theta, atol=1e-6)
    x_final = game.equilibrium(solution.y[:, -1])
    assert np.max(np.abs(game.social_cost_grad_x(x_final, solution.y[:, -1]))) < 1e-6


def test_projected_flow_respects_the_safe_set():
    game = AggregativeGame(AggregativeParams.default(n=10, seed=0))
    safe = IncentiveSet(np.zeros(10), np.full(10, 0.5))
    solution = social_gradient_flow(game, np.zeros(10), 20.0, safe_set=safe)
    assert np.all(solution.y >= 0.0) and np.all(solution.y <= 0.5)
    assert np.any(np.isclose(solution.y[:, -1], 0.5))


@pytest.mark.parametrize("game_name", ["aggregative", "oscillators"])
def test_two_timescale_scheme_converges_to_the_same_price_with_different_learners(game_name):
    if game_name == "aggregative":
        game = AggregativeGame(AggregativeParams.default(n=10, seed=1, beta=0.5, kappa=0.5))
    else:
        game = OscillatorGame(OscillatorParams.default(n=10, seed=1))
    target = game.first_best_incentive().theta
    start = game.strategy_set.project(np.zeros(10))
    step = 1.0 / jacobian_norm(game, start, np.zeros(10))
    learners = [
        EuclideanMirrorDescent(game.strategy_set, step),
        BestResponse(game.strategy_set, 0.2),
        LogitBestResponse(game.strategy_set, temperature=1e-3, step_size=0.3, grid_size=4001),
    ]
    finals = []
    for learner in learners:
        planner = SocialGradientPlanner(game, 0.02)
        theta, x = planner.initial_incentive(), start
        for k in range(6000):
            x = planner.advance_followers(learner, x, theta, k)
            theta = planner.update(theta, x, k)
        finals.append(theta)
    np.testing.assert_allclose(finals[0], target, atol=1e-6)
    np.testing.assert_allclose(finals[1], target, atol=1e-6)
    np.testing.assert_allclose(finals[2], target, atol=2e-3)  # grid resolution of the logit choice


def test_social_gradient_uses_only_the_social_cost_gradient():
    game = AggregativeGame(AggregativeParams.default(n=6, seed=0))
    planner = SocialGradientPlanner(game, 0.1)
    x, theta = np.full(6, 2.0), np.zeros(6)
    expected = game.incentive_set.project(theta + 0.1 * game.social_cost_grad_x(x, theta))
    np.testing.assert_array_equal(planner.update(theta, x, 0), expected)


def test_one_iteration_at_n_100000_is_linear_time():
    game = AggregativeGame(AggregativeParams.default(n=100_000, seed=0))
    learner = EuclideanMirrorDescent(game.strategy_set, 0.3)
    planner = SocialGradientPlanner(game, 0.02)
    theta, x = planner.initial_incentive(), np.zeros(100_000)
    start = time.perf_counter()
    for k in range(5):
        x = planner.advance_followers(learner, x, theta, k)
        theta = planner.update(theta, x, k)
    assert np.all(np.isfinite(theta)) and np.any(theta != 0)
    assert time.perf_counter() - start < 5.0  # a quadratic-time step would take minutes


def test_argument_errors():
    game = AggregativeGame(AggregativeParams.default(n=4))
    with pytest.raises(ValueError, match="safe_set"):
        SocialGradientPlanner(game, safe_set=(0, 1))
    with pytest.raises(ValueError, match="safe_set"):
        SocialGradientPlanner(game, safe_set=IncentiveSet(np.zeros(3), np.ones(3)))
    for t_final in (-1.0, 1e-300):  # a vanishing horizon would never return
        with pytest.raises(ValueError, match="t_final"):
            social_gradient_flow(game, np.zeros(4), t_final)
    with pytest.raises(ValueError, match="projection_horizon"):
        social_gradient_flow(game, np.zeros(4), 1.0, projection_horizon=1e-20)
    with pytest.raises(RuntimeError, match="evaluations"):
        social_gradient_flow(game, np.zeros(4), 100.0, max_evaluations=10)
    with pytest.raises(ValueError, match="theta0"):
        social_gradient_flow(game, np.full(4, 100.0), 1.0)

    class NotAPriceGame(CournotGame):
        linear_prices = False

        def _jvp_theta(self, x, theta, tangent):
            return -2.0 * tangent

    with pytest.raises(ValueError, match="linear prices"):
        SocialGradientPlanner(NotAPriceGame(CournotParams.paper(n=3)))
