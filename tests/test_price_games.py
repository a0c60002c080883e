"""Aggregative and coupled-oscillator games: exact equilibria and optima against independent
solves, finite-difference checks of every product, envs' conformance and determinism."""

import warnings

import numpy as np
import pytest
import scipy.optimize
from hypothesis_compat import given, settings, st
from pettingzoo.test import api_test, parallel_api_test

from incentive_envs import (
    AggregativeGame,
    AggregativeParams,
    OscillatorGame,
    OscillatorParams,
    aggregative_v0,
    oscillators_v0,
)


def _aggregative(n, seed, **kwargs):
    return AggregativeGame(AggregativeParams.default(n=n, seed=seed, **kwargs))


def _oscillators(n, seed, **kwargs):
    return OscillatorGame(OscillatorParams.default(n=n, seed=seed, **kwargs))


GAMES = {"aggregative": _aggregative, "oscillators": _oscillators}


def _random_point(game, rng):
    s = game.strategy_set
    return rng.uniform(np.maximum(s.lower, -3.0), np.minimum(s.upper, 3.0))


@given(
    n=st.integers(1, 40),
    seed=st.integers(0, 10_000),
    beta=st.floats(0.0, 3.0),
    kappa=st.floats(0.0, 4.0),
    cap=st.floats(0.5, 12.0),
)
@settings(max_examples=60, deadline=None)
def test_aggregative_equilibrium_satisfies_the_box_kkt_conditions(n, seed, beta, kappa, cap):
    game = _aggregative(n, seed, beta=beta, kappa=kappa, cap=cap)
    theta = np.random.default_rng(seed).uniform(-20, 20, n)
    x = game.equilibrium(theta)
    v = game.pseudo_gradient(x, theta)
    assert game.strategy_set.contains(x)
    tol = 1e-9
    assert np.all(v[x <= 0] <= tol)
    assert np.all(v[x >= cap] >= -tol)
    interior = (x > 0) & (x < cap)
    assert np.all(np.abs(v[interior]) <= tol)


@pytest.mark.parametrize("seed", range(3))
def test_aggregative_equilibrium_matches_projected_gradient_play(seed):
    game = _aggregative(15, seed)
    theta = np.random.default_rng(seed).uniform(-5, 15, 15)
    x = np.zeros(15)
    for _ in range(5000):
        x = game.strategy_set.project(x + 0.3 * game.pseudo_gradient(x, theta))
    np.testing.assert_allclose(game.equilibrium(theta), x, atol=1e-10)


@pytest.mark.parametrize("name", GAMES)
@pytest.mark.parametrize("seed", range(3))
def test_social_optimum_matches_scipy(name, seed):
    game = GAMES[name](12, seed)
    theta = np.zeros(12)
    optimum = game.social_optimum()
    s = game.strategy_set
    result = scipy.optimize.minimize(
        lambda x: game.social_cost(x, theta),
        np.clip(np.zeros(12), s.lower, s.upper),
        jac=lambda x: game.social_cost_grad_x(x, theta),
        bounds=list(zip(s.lower, s.upper)),
        method="L-BFGS-B",
        options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 10_000},
    )
    assert optimum.value == pytest.approx(result.fun, rel=1e-10, abs=1e-10)
    assert optimum.value == pytest.approx(game.social_cost(optimum.strategy, theta), rel=1e-14)
    np.testing.assert_allclose(optimum.strategy, result.x, atol=1e-5)


@pytest.mark.parametrize("seed", range(3))
def test_oscillator_equilibrium_is_a_root_and_each_phase_a_best_response(seed):
    game = _oscillators(25, seed)
    theta = np.random.default_rng(seed).uniform(-2, 2, 25)
    x = game.equilibrium(theta)
    assert np.max(np.abs(game.pseudo_gradient(x, theta))) < 1e-12
    np.testing.assert_allclose(game.best_response(x, theta), x, atol=1e-12)
    # and no unilateral deviation on a fine grid does better
    grid = np.tile(np.linspace(-np.pi, np.pi, 4001), (25, 1))
    own = game.rewards(x, theta)
    assert np.all(game.unilateral_rewards(x, theta, grid).max(axis=1) <= own + 1e-12)


@pytest.mark.parametrize("name", GAMES)
@pytest.mark.parametrize("seed", range(3))
def test_every_product_and_gradient_matches_finite_differences(name, seed):
    game = GAMES[name](9, seed)
    rng = np.random.default_rng(seed)
    x, theta = _random_point(game, rng), rng.uniform(-1, 1, 9)
    tangent, cotangent, dtheta = rng.standard_normal(9), rng.standard_normal(9), rng.standard_normal(9)
    eps = 1e-6

    def central(function, point, direction):
        return (function(point + eps * direction) - function(point - eps * direction)) / (2 * eps)

    def v_of_x(z):
        return game.pseudo_gradient(z, theta)

    def v_of_theta(t):
        return game.pseudo_gradient(x, t)

    np.testing.assert_allclose(game.jvp_x(x, theta, tangent), central(v_of_x, x, tangent), atol=1e-7)
    np.testing.assert_allclose(
        game.jvp_theta(x, theta, dtheta), central(v_of_theta, theta, dtheta), atol=1e-7
    )
    assert cotangent @ game.jvp_x(x, theta, tangent) == pytest.approx(
        tangent @ game.vjp_x(x, theta, cotangent)
    )
    assert cotangent @ game.jvp_theta(x, theta, dtheta) == pytest.approx(
        dtheta @ game.vjp_theta(x, theta, cotangent)
    )
    basis = np.eye(9)
    grad_fd = np.array([central(lambda z: game.social_cost(z, theta), x, e) for e in basis])
    np.testing.assert_allclose(game.social_cost_grad_x(x, theta), grad_fd, atol=1e-6)
    np.testing.assert_allclose(game.social_cost_grad_theta(x, theta), 0.0)
    own = np.array([central(lambda z, i=i: game.rewards(z, theta)[i], x, basis[i]) for i in range(9)])
    np.testing.assert_allclose(game.pseudo_gradient(x, theta), own, atol=1e-6)
    actions = np.stack([_random_point(game, rng) for _ in range(3)], axis=1)
    brute = np.array(
        [
            [game.rewards(np.where(np.arange(9) == i, actions[i, g], x), theta)[i] for g in range(3)]
            for i in range(9)
        ]
    )
    np.testing.assert_allclose(game.unilateral_rewards(x, theta, actions), brute, atol=1e-10)


@pytest.mark.parametrize("name", GAMES)
def test_pigouvian_price_implements_the_optimum(name):
    game = GAMES[name](30, 1, **({"beta": 0.5, "kappa": 0.5} if name == "aggregative" else {}))
    first_best = game.first_best_incentive()
    optimum = game.social_optimum()
    np.testing.assert_allclose(game.equilibrium(first_best.theta), optimum.strategy, atol=1e-10)
    assert first_best.unique


def test_parameter_validation_names_the_argument():
    with pytest.raises(ValueError, match="curvature"):
        AggregativeParams(np.array([1.0, -1.0]), np.ones(2), np.ones(2))
    with pytest.raises(ValueError, match="cap"):
        AggregativeParams(np.ones(2), np.ones(2), np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="benefit"):
        AggregativeParams(np.ones(2), np.ones(3), np.ones(2))
    with pytest.raises(ValueError, match="kappa"):
        AggregativeParams.default(3, kappa=-1.0)
    with pytest.raises(ValueError, match="price_bounds"):
        AggregativeParams.default(3, price_bounds=(1.0, -1.0))
    with pytest.raises(ValueError, match="stiffness"):
        OscillatorParams(np.array([1.0, 1.0]), np.zeros(2), coupling=0.5, externality=0.4)
    with pytest.raises(ValueError, match="natural_phase"):
        OscillatorParams(np.full(2, 2.5), np.array([3.0, 0.0]))
    with pytest.raises(ValueError, match="natural_phase"):
        OscillatorParams(np.full(2, 2.5), np.array([np.nan, 0.0]))
    with pytest.raises(ValueError, match="theta"):
        _oscillators(3, 0).equilibrium(np.array([0.0, 5.0, 0.0]))
    with pytest.raises(ValueError, match="theta"):
        _aggregative(3, 0).equilibrium(np.array([0.0, np.inf, 0.0]))
    with pytest.raises(ValueError, match="n must"):
        OscillatorParams.default(0)


ENVS = {
    "aggregative_v0": lambda **kw: aggregative_v0.parallel_env(n_agents=4, **kw),
    "oscillators_v0": lambda **kw: oscillators_v0.parallel_env(n_agents=4, **kw),
}
AEC = {
    "aggregative_v0": lambda: aggregative_v0.env(n_agents=4, max_cycles=25),
    "oscillators_v0": lambda: oscillators_v0.env(n_agents=4, max_cycles=25),
}


@pytest.mark.parametrize("name", ENVS)
def test_pettingzoo_conformance(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parallel_api_test(ENVS[name](max_cycles=25, feedback_noise_std=0.3), num_cycles=60)
        api_test(AEC[name](), num_cycles=60)


@pytest.mark.parametrize("name", ENVS)
def test_multi_step_determinism_under_a_seed(name):
    envs = [ENVS[name](max_cycles=80, feedback_noise_std=0.5, feedback=("gradient",)) for _ in range(2)]
    streams = [env.reset(seed=7) for env in envs]
    assert all(np.array_equal(streams[0][0][a], streams[1][0][a]) for a in envs[0].agents)
    rng = np.random.default_rng(3)
    for _ in range(60):
        actions = {a: envs[0].action_space(a).sample() for a in envs[0].agents}
        envs[0].action_space(envs[0].agents[0]).seed(int(rng.integers(1 << 30)))
        outputs = [env.step(actions) for env in envs]
        for first, second in zip(outputs[0], outputs[1]):
            for agent in first:
                if isinstance(first[agent], dict):
                    assert all(np.array_equal(first[agent][key], second[agent][key]) for key in first[agent])
                else:
                    assert np.array_equal(first[agent], second[agent])
    other = ENVS[name](max_cycles=80, feedback_noise_std=0.5, feedback=("gradient",))
    _, infos = other.reset(seed=8)
    assert not np.array_equal(
        infos["agent_0" if name == "aggregative_v0" else "oscillator_0"]["gradient"],
        streams[0][1]["agent_0" if name == "aggregative_v0" else "oscillator_0"]["gradient"],
    )


def test_env_rewards_and_observations_follow_the_model():
    env = oscillators_v0.parallel_env(n_agents=5, max_cycles=3, feedback=("gradient",))
    env.reset(seed=0)
    prices = np.linspace(-1.0, 1.0, 5)
    env.set_incentive(prices)
    phases = np.linspace(-0.5, 0.5, 5)
    observations, rewards, _, _, infos = env.step({a: phases[i : i + 1] for i, a in enumerate(env.agents)})
    game = env.game
    np.testing.assert_allclose(
        [rewards[a] for a in env.possible_agents], game.rewards(phases, prices), rtol=1e-12
    )
    radius, angle = game.order_parameter(phases)
    np.testing.assert_allclose(observations["oscillator_2"], [prices[2], radius, angle, phases[2]], rtol=1e-6)
    np.testing.assert_allclose(infos["oscillator_4"]["gradient"], game.pseudo_gradient(phases, prices)[4:5])
