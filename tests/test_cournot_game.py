"""Cournot emission-tax game: exact equilibrium (KKT and learners), exact W*, finite
differences of every product, parameter validation."""

import numpy as np
import pytest
import scipy.optimize
from hypothesis_compat import given, settings, st

from incentive_envs import CournotGame, CournotParams


@st.composite
def instances(draw, zero_curvature=None):
    n = draw(st.integers(1, 40))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    k = (
        0.0
        if (zero_curvature if zero_curvature is not None else draw(st.booleans()))
        else draw(st.floats(0.01, 5.0))
    )
    p0 = draw(st.floats(10.0, 200.0))
    gamma = draw(st.floats(0.1, 3.0))
    small_cap = draw(st.booleans())
    cap = float(rng.uniform(0.05, 2.0)) if small_cap else None
    params = CournotParams(
        rng.uniform(0.0, 5.0, n),
        rng.uniform(0.0, 8.0, n),
        p0,
        gamma,
        draw(st.floats(0.0, 20.0)),
        k,
        cap,
        (-p0, p0),
    )
    # taxes large enough that some firms shut down, negative enough that some produce a lot
    theta = rng.uniform(-0.5 * p0, p0, n)
    return CournotGame(params), theta


@given(instances())
@settings(max_examples=150, deadline=None)
def test_equilibrium_satisfies_the_kkt_conditions_of_the_box_vi(instance):
    game, theta = instance
    x = game.equilibrium(theta)
    v = game.pseudo_gradient(x, theta)
    cap = game.params.output_cap
    tol = 1e-9 * max(1.0, game.params.p0)
    assert game.strategy_set.contains(x, atol=0.0)
    assert np.all(v[x <= 0.0] <= tol)
    assert np.all(v[x >= cap] >= -tol)
    interior = (x > 0.0) & (x < cap)
    assert np.all(np.abs(v[interior]) <= tol)


@pytest.mark.parametrize("k", [0.0, 0.3, 2.0])
@pytest.mark.parametrize("seed", range(3))
def test_equilibrium_equals_the_limit_of_projected_gradient_play(k, seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(10, 30))
    game = CournotGame(CournotParams.paper(n=n, k=k, seed=seed))
    theta = rng.uniform(0.0, 60.0, n)
    step = 1.0 / (game.params.gamma * (n + 1) + k)
    x = np.zeros(n)
    for _ in range(20_000):
        x_next = game.strategy_set.project(x + step * game.pseudo_gradient(x, theta))
        if np.max(np.abs(x_next - x)) < 1e-14:
            break
        x = x_next
    np.testing.assert_allclose(game.equilibrium(theta), x_next, atol=1e-10)


def _scipy_optimum(game):
    n = game.params.n
    theta = np.zeros(n)
    result = scipy.optimize.minimize(
        lambda x: game.social_cost(x, theta),
        np.full(n, 0.5),
        jac=lambda x: game.social_cost_grad_x(x, theta),
        bounds=[(0.0, game.params.output_cap)] * n,
        method="L-BFGS-B",
        options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 50_000},
    )
    return result.fun


@pytest.mark.parametrize("k", [0.0, 0.5, 4.0])
@pytest.mark.parametrize("seed", range(3))
def test_w_star_matches_an_independent_scipy_solve(k, seed):
    game = CournotGame(
        CournotParams.paper(n=30, k=k, seed=seed, tau=float(np.random.default_rng(seed).uniform(1, 10)))
    )
    optimum = game.social_optimum()
    assert game.strategy_set.contains(optimum.strategy, atol=0.0)
    assert optimum.value == pytest.approx(game.social_cost(optimum.strategy, np.zeros(30)), rel=1e-14)
    assert optimum.value == pytest.approx(_scipy_optimum(game), rel=1e-9)


def test_w_star_with_capacity_limits_matches_scipy():
    game = CournotGame(CournotParams.paper(n=20, k=0.0, max_output=3.0))
    optimum = game.social_optimum()
    assert np.sum(optimum.strategy == 3.0) >= 2  # the cheapest firms fill up first
    assert optimum.value == pytest.approx(_scipy_optimum(game), rel=1e-9)


def test_w_star_for_k0_is_the_cheapest_firm_alone():
    params = CournotParams.paper(n=50, k=0.0)
    game = CournotGame(params)
    cost = params.social_marginal_cost
    cheapest = int(np.argmin(cost))
    quantity = (params.p0 - cost[cheapest]) / params.gamma
    expected = np.zeros(50)
    expected[cheapest] = quantity
    optimum = game.social_optimum()
    np.testing.assert_allclose(optimum.strategy, expected, atol=1e-12)
    assert -optimum.value == pytest.approx(0.5 * params.gamma * quantity**2, rel=1e-12)


def test_k_positive_optimum_is_unique_and_strictly_concave():
    game = CournotGame(CournotParams.paper(n=25, k=1.5))
    optimum = game.social_optimum()
    rng = np.random.default_rng(0)
    for _ in range(20):  # any feasible perturbation lowers welfare
        other = game.strategy_set.project(optimum.strategy + rng.normal(0, 0.3, 25))
        if not np.allclose(other, optimum.strategy):
            assert game.social_cost(other, np.zeros(25)) > optimum.value


@pytest.mark.parametrize("seed", range(3))
def test_every_product_and_gradient_matches_finite_differences(seed):
    rng = np.random.default_rng(seed)
    n = 8
    game = CournotGame(CournotParams.paper(n=n, k=float(rng.uniform(0, 3)), seed=seed))
    x, theta = rng.uniform(0.1, 5.0, n), rng.uniform(-10, 10, n)
    tangent, cotangent, dtheta = rng.standard_normal(n), rng.standard_normal(n), rng.standard_normal(n)
    eps = 1e-6

    def central(function, point, direction):
        return (function(point + eps * direction) - function(point - eps * direction)) / (2 * eps)

    np.testing.assert_allclose(
        game.jvp_x(x, theta, tangent),
        central(lambda z: game.pseudo_gradient(z, theta), x, tangent),
        atol=1e-7,
    )
    np.testing.assert_allclose(
        game.jvp_theta(x, theta, dtheta),
        central(lambda t: game.pseudo_gradient(x, t), theta, dtheta),
        atol=1e-7,
    )
    assert cotangent @ game.jvp_x(x, theta, tangent) == pytest.approx(
        tangent @ game.vjp_x(x, theta, cotangent)
    )
    assert cotangent @ game.jvp_theta(x, theta, dtheta) == pytest.approx(
        dtheta @ game.vjp_theta(x, theta, cotangent)
    )
    basis = np.eye(n)
    grad = np.array([central(lambda z: game.social_cost(z, theta), x, e) for e in basis])
    np.testing.assert_allclose(game.social_cost_grad_x(x, theta), grad, rtol=1e-7, atol=1e-6)
    grad_theta = np.array([central(lambda t: game.social_cost(x, t), theta, e) for e in basis])
    np.testing.assert_allclose(game.social_cost_grad_theta(x, theta), grad_theta, atol=1e-9)
    own = np.array([central(lambda z, i=i: game.rewards(z, theta)[i], x, basis[i]) for i in range(n)])
    np.testing.assert_allclose(game.pseudo_gradient(x, theta), own, atol=1e-6)
    np.testing.assert_allclose(
        game.jacobian_x(x, theta), -game.params.gamma * (np.eye(n) + 1) - game.params.k * np.eye(n)
    )


def test_best_response_maximises_own_profit():
    game = CournotGame(CournotParams.paper(n=6, k=0.7))
    rng = np.random.default_rng(1)
    x, theta = rng.uniform(0, 20, 6), rng.uniform(-20, 60, 6)
    grid = np.tile(np.linspace(0.0, game.params.output_cap, 200_001), (6, 1))
    brute = grid[0][np.argmax(game.unilateral_rewards(x, theta, grid), axis=1)]
    np.testing.assert_allclose(game.best_response(x, theta), brute, atol=1e-3)


def test_paper_instance_defaults_and_seeding():
    params = CournotParams.paper()
    assert params.n == 100 and params.p0 == 100 and params.gamma == 1 and params.tau == 10 and params.k == 0
    np.testing.assert_allclose(params.marginal_cost, np.linspace(1, 2, 100))
    noise = params.emission_rate - (10 - np.exp(params.marginal_cost))
    assert 0.3 < noise.std() < 0.7 and abs(noise.mean()) < 0.2
    assert np.array_equal(
        CournotParams.paper(seed=3).emission_rate, CournotParams.paper(seed=3).emission_rate
    )
    assert not np.array_equal(
        CournotParams.paper(seed=3).emission_rate, CournotParams.paper(seed=4).emission_rate
    )
    assert params.output_cap == 100.0 and params.tax_bounds == (-100.0, 100.0)


def test_first_best_tax_implements_the_optimum():
    game = CournotGame(CournotParams.paper(n=40, k=2.0))
    first_best = game.first_best_incentive()
    assert game.equilibrium_social_cost(first_best.theta) == pytest.approx(
        game.social_optimum().value, rel=1e-12
    )
    with pytest.raises(ValueError, match="tax_bounds"):
        CournotGame(CournotParams.paper(n=40, k=0.0, tax_bounds=(0.0, 100.0))).first_best_incentive()


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"p0": 0.0}, "p0"),
        ({"p0": np.nan}, "p0"),
        ({"gamma": -1.0}, "gamma"),
        ({"tau": -0.1}, "tau"),
        ({"k": -1.0}, "k"),
        ({"k": np.inf}, "k"),
        ({"max_output": 0.0}, "max_output"),
        ({"tax_bounds": (5.0, -5.0)}, "tax_bounds"),
        ({"tax_bounds": (np.nan, 5.0)}, "tax_bounds"),
        ({"tax_bounds": 3.0}, "tax_bounds"),
    ],
)
def test_bad_parameters_raise_value_errors_naming_them(kwargs, name):
    base = dict(marginal_cost=np.ones(3), emission_rate=np.ones(3))
    with pytest.raises(ValueError, match=name):
        CournotParams(**base, **kwargs)


def test_bad_arrays_and_taxes_raise_value_errors():
    with pytest.raises(ValueError, match="marginal_cost"):
        CournotParams(np.array([1.0, np.nan]), np.ones(2))
    with pytest.raises(ValueError, match="marginal_cost"):
        CournotParams(np.array([1.0, -1.0]), np.ones(2))
    with pytest.raises(ValueError, match="emission_rate"):
        CournotParams(np.ones(2), np.ones(3))
    with pytest.raises(ValueError, match="emission_rate"):
        CournotParams(np.ones(2), np.array([1.0, -0.5]))
    with pytest.raises(ValueError, match="n must"):
        CournotParams.paper(n=0)
    with pytest.raises(ValueError, match="emission_noise_std"):
        CournotParams.paper(n=3, emission_noise_std=-1.0)
    game = CournotGame(CournotParams.paper(n=3))
    for bad in (
        np.array([0.0, np.nan, 0.0]),
        np.array([0.0, np.inf, 0.0]),
        np.zeros(4),
        np.array([0.0, 1e3, 0.0]),
    ):
        with pytest.raises(ValueError, match="theta"):
            game.equilibrium(bad)
    with pytest.raises(ValueError, match="params"):
        CournotGame({"n": 3})
