"""Tax economy: schedule and Gini formulas on hand cases, exact best responses (interiors, kinks,
non-concave schedules), the lump-sum fixed point, finite differences of every product and of
the hypergradient, baselines, the optimum search and frontier, the torch mirror, the env's
conformance and determinism, and validation."""

import importlib.util
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pettingzoo.test import api_test, parallel_api_test

from agents import EuclideanMirrorDescent
from agents.fixed_point import free_coordinates
from incentive_envs import TaxEconomyGame, TaxEconomyParams, make, registry, tax_economy_v0
from incentive_envs.tax_economy.game import (
    US_FEDERAL_2018_RATES,
    bracket_incomes,
    equality,
    equality_times_productivity,
    free_market_rates,
    gini,
    optimal_schedule,
    pareto_frontier,
    productivity,
    rank_weights,
    saez_rates,
    tax_liability,
    us_federal_rates,
)
from incentive_envs.tax_economy.torch_model import TorchTaxEconomy
from incentive_envs.testing import identical
from planners.baselines import optimal_incentive
from planners.hypergradient import exact_hypergradient, implicit_hypergradient

_SCRIPT = importlib.util.spec_from_file_location(
    "tax_economy_script", Path(__file__).resolve().parents[1] / "scripts" / "tax_economy.py"
)
tax_economy_script = importlib.util.module_from_spec(_SCRIPT)
_SCRIPT.loader.exec_module(tax_economy_script)

US_CUTOFFS = np.array([0.0, 9.525, 38.7, 82.5, 157.5, 200.0, 500.0])


def _game(n=40, seed=0, **kwargs):
    return TaxEconomyGame(TaxEconomyParams.pareto(n, seed=seed, **kwargs))


def _progressive(rng, size=7, top=0.9):
    return np.sort(rng.uniform(0.0, top, size))


# -- formulas on hand cases ----------------------------------------------------------------------
def test_tax_liability_by_hand():
    rates = np.array(US_FEDERAL_2018_RATES)
    income = np.array([0.0, 5.0, 9.525, 50.0, 600.0])
    expected = [
        0.0,
        0.5,
        0.9525,
        0.9525 + 0.12 * 29.175 + 0.22 * 11.3,
        0.9525 + 0.12 * 29.175 + 0.22 * 43.8 + 0.24 * 75 + 0.32 * 42.5 + 0.35 * 300 + 0.37 * 100,
    ]
    np.testing.assert_allclose(tax_liability(income, rates, US_CUTOFFS), expected, rtol=1e-14)
    np.testing.assert_allclose(bracket_incomes(income, US_CUTOFFS) @ rates, expected, rtol=1e-14)
    np.testing.assert_allclose(
        bracket_incomes(np.array([50.0]), US_CUTOFFS)[0], [9.525, 29.175, 11.3, 0, 0, 0, 0]
    )


def test_gini_equality_and_their_product_by_hand():
    coin = np.array([3.0, 1.0, 2.0])
    # Σ|c_i − c_j| = 8 over ordered pairs, Gini = 8 / (2·3·6); equality = 1 − Gini·3/2
    assert gini(coin) == pytest.approx(2.0 / 9.0)
    assert equality(coin) == pytest.approx(2.0 / 3.0)
    assert productivity(coin) == 6.0
    # = (2/(n−1)) Σ_{i<j} min(c_i, c_j) = 1 + 1 + 2
    assert equality_times_productivity(coin) == pytest.approx(4.0)
    np.testing.assert_array_equal(rank_weights(coin), [0.0, 2.0, 1.0])
    assert equality(np.full(5, 7.0)) == pytest.approx(1.0)
    assert equality(np.array([0.0, 0.0, 0.0, 1.0])) == pytest.approx(0.0)  # one worker owns everything


@given(st.lists(st.floats(0.0, 1e3), min_size=2, max_size=30), st.integers(0, 1000))
@settings(max_examples=100, deadline=None)
def test_equality_times_productivity_is_the_pairwise_minimum_sum(values, seed):
    coin = np.array(values) + np.random.default_rng(seed).uniform(0.01, 1.0)
    n = coin.size
    pairwise = np.abs(coin[:, None] - coin[None, :]).sum() / (2 * n * coin.sum())
    assert gini(coin) == pytest.approx(pairwise, abs=1e-12)
    minimum = np.minimum(coin[:, None], coin[None, :])
    expected = 2.0 / (n - 1) * np.triu(minimum, 1).sum()
    assert equality_times_productivity(coin) == pytest.approx(expected, rel=1e-12)
    assert equality(coin) * productivity(coin) == pytest.approx(expected, rel=1e-12)


def test_ties_take_the_stable_rank_and_the_value_is_continuous():
    np.testing.assert_array_equal(rank_weights(np.array([5.0, 5.0, 1.0])), [1.0, 0.0, 2.0])
    base = np.array([5.0, 5.0, 1.0])
    for shift in (1e-9, -1e-9):
        moved = base + np.array([shift, 0.0, 0.0])
        assert equality_times_productivity(moved) == pytest.approx(
            equality_times_productivity(base), abs=1e-8
        )


# -- exact best responses -------------------------------------------------------------------------
def _two_brackets(skill, rates_cutoff=20.0, **kwargs):
    return TaxEconomyGame(TaxEconomyParams(np.array(skill), np.array([0.0, rates_cutoff]), **kwargs))


def test_best_response_interior_closed_form():
    game = _two_brackets([0.30, 0.40, 0.45], rates_cutoff=1e3)
    p = game.params
    theta, lump_sum = np.array([0.2, 0.5]), 1.5
    target = (p.skill * 0.8 / p.labour_cost) ** (1 / p.eta)  # coin c* = (s(1−θ)/κ)^{1/η}
    income = (target - p.endowment - lump_sum) / 0.8
    assert income[0] < 0 < income[1]  # the lump sum covers the first worker's target: it stays home
    expected = np.maximum(income, 0.0) / p.skill
    np.testing.assert_allclose(game.best_response_to_lump_sum(theta, lump_sum), expected, rtol=1e-13)
    # and the first-order condition holds at the interior ones
    coin = p.endowment + 0.8 * income[1:] + lump_sum
    np.testing.assert_allclose(coin ** (-p.eta) * p.skill[1:] * 0.8, p.labour_cost, rtol=1e-12)


def test_best_response_bunches_at_a_concave_kink_and_is_pinned():
    # with θ = (0, 0.6) a skill-0.33 worker wants ≈ 5.7 coin untaxed (above the cutoff 4) but,
    # taxed at 60% above 4, less than 4: it bunches at the cutoff
    game = _two_brackets([0.33, 0.33], rates_cutoff=4.0)
    p = game.params
    theta = np.array([0.0, 0.6])
    untaxed = (0.33 / p.labour_cost) ** (1 / p.eta) - p.endowment
    taxed = ((0.33 * 0.4 / p.labour_cost) ** (1 / p.eta) - p.endowment - 0.6 * 4.0) / 0.4
    assert untaxed > 4.0 > taxed
    labour = game.best_response_to_lump_sum(theta, 0.0)
    np.testing.assert_array_equal(labour, 4.0 / p.skill)
    state = game.equilibrium_state(theta)
    assert state.lump_sum == 0.0 and np.all(state.income == 4.0) and not state.free.any()
    assert game._pinned_coordinates(state.labour, theta).all()  # held by the kink, like a bound
    np.testing.assert_array_equal(game.pseudo_gradient(state.labour, theta), 0.0)  # 0 ∈ [v⁺, v⁻]
    assert free_coordinates(game, state.labour, theta, 1.0).size == 0


def test_best_response_with_falling_rates_picks_the_better_local_optimum():
    # θ = (0.9, 0): bracket 0 is nearly confiscatory, so workers either stay low or jump above 5
    game = _two_brackets(np.linspace(0.3, 0.45, 41), rates_cutoff=5.0)
    theta = np.array([0.9, 0.0])
    labour = game.best_response_to_lump_sum(theta, 0.5)
    p = game.params
    grid = np.linspace(0.0, p.max_labour, 100_001)
    income = p.skill[:, None] * grid
    coin = p.endowment + income - tax_liability(income, theta, p.cutoffs) + 0.5
    brute = grid[np.argmax(game._utility_of_coin(coin) - p.labour_cost * grid, axis=1)]
    np.testing.assert_allclose(labour, brute, atol=p.max_labour / 100_000)
    low, high = labour * game.params.skill < 5.0, labour * game.params.skill > 5.0
    assert low.any() and high.any()  # both local optima are used: utility is not concave


@given(seed=st.integers(0, 10_000), monotone=st.booleans())
@settings(max_examples=30, deadline=None)
def test_best_response_beats_a_fine_grid(seed, monotone):
    rng = np.random.default_rng(seed)
    game = _game(12, seed)
    theta = _progressive(rng) if monotone else rng.uniform(0.0, 1.0, 7)
    x = rng.uniform(0.0, game.params.max_labour, 12)
    response = game.best_response(x, theta)
    grid = np.tile(np.linspace(0.0, game.params.max_labour, 20_001), (12, 1))
    best_grid = game.unilateral_rewards(x, theta, grid).max(axis=1)
    own = game.unilateral_rewards(x, theta, response[:, None])[:, 0]
    assert np.all(own >= best_grid - 1e-12)
    assert game.strategy_set.contains(response, atol=0.0)


# -- the equilibrium: a fixed point in the lump sum ---------------------------------------------------
@given(seed=st.integers(0, 10_000), n=st.integers(2, 60))
@settings(max_examples=60, deadline=None)
def test_equilibrium_lump_sum_equals_its_revenue_and_every_worker_best_responds(seed, n):
    rng = np.random.default_rng(seed)
    game = _game(n, seed)
    theta = _progressive(rng, top=1.0)
    state = game.equilibrium_state(theta)
    revenue = np.mean(tax_liability(state.income, theta, game.params.cutoffs))
    assert state.lump_sum == pytest.approx(revenue, rel=1e-12, abs=1e-12)
    assert abs(state.budget_residual) <= 1e-12 * max(1.0, revenue)
    np.testing.assert_array_equal(state.labour, game.best_response_to_lump_sum(theta, state.lump_sum))
    np.testing.assert_allclose(game.best_response(state.labour, theta), state.labour, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(state.coin, game.coin(state.labour, theta), rtol=1e-14)


@pytest.mark.parametrize("seed", range(4))
def test_equilibrium_kkt_conditions_with_bunching(seed):
    rng = np.random.default_rng(seed)
    game = _game(300, seed)
    theta = _progressive(rng)
    state = game.equilibrium_state(theta)
    p = game.params
    v = game.pseudo_gradient(state.labour, theta)
    free = state.free
    assert np.max(np.abs(v[free]), initial=0.0) < 1e-10
    at_zero, at_cap = state.labour == 0.0, state.labour == p.max_labour
    assert np.all(v[at_zero & ~free] <= 1e-12) and np.all(v[at_cap & ~free] >= -1e-12)
    kink = ~free & ~at_zero & ~at_cap
    assert kink.any()  # rising rates make workers bunch at cutoffs
    k = state.bracket[kink]
    np.testing.assert_array_equal(state.income[kink], p.cutoffs[k])
    gain = state.coin[kink] ** (-p.eta) * p.skill[kink]
    assert np.all(gain * (1 - theta[k - 1]) >= p.labour_cost) and np.all(
        gain * (1 - theta[k]) <= p.labour_cost
    )
    assert np.all(v[kink] == 0.0)  # the superdifferential's element nearest 0: a fixed point of play
    # the generic projected map's free set (box and pinned coordinates excluded) is the solver's
    np.testing.assert_array_equal(free_coordinates(game, state.labour, theta, 1.0), np.flatnonzero(free))


def test_budget_residual_is_monotone_so_the_root_is_unique():
    game = _game(200, 3)
    theta = np.array([0.5, 0.1, 0.6, 0.2, 0.7, 0.3, 0.1])  # falling rates: utility not concave
    lump_sums = np.linspace(0.0, 40.0, 801)
    revenue = [
        np.mean(
            tax_liability(
                game.params.skill * game.best_response_to_lump_sum(theta, t), theta, game.params.cutoffs
            )
        )
        for t in lump_sums
    ]
    assert np.all(np.diff(revenue) <= 1e-12)  # Topkis: best responses fall as T rises
    state = game.equilibrium_state(theta)
    below, above = lump_sums < state.lump_sum, lump_sums > state.lump_sum
    assert np.all((lump_sums - revenue)[below] < 0) and np.all((lump_sums - revenue)[above] > 0)


def test_without_a_pure_equilibrium_the_residual_is_one_jump_over_n():
    # a falling schedule whose lump-sum root sits on a jump of R(T) (found by a scan of schedules)
    game, theta = _game(300, 0), np.array([0.58, 0.3, 0.67, 0.2, 0.94, 0.37, 0.11])
    state = game.equilibrium_state(theta)
    assert 0.0 < state.budget_residual < game.params.skill.max() * game.params.max_labour / game.params.n
    np.testing.assert_array_equal(state.labour, game.best_response_to_lump_sum(theta, state.lump_sum))
    # just below T* some worker prefers a higher income: the revenue jumps over T*
    above = game.best_response_to_lump_sum(theta, state.lump_sum * (1 - 1e-12))
    revenue_below = np.mean(tax_liability(game.params.skill * above, theta, game.params.cutoffs))
    assert revenue_below > state.lump_sum


def test_projected_gradient_play_converges_to_the_equilibrium():
    game = _game(30, 1)
    theta = np.full(7, 0.25)  # a flat tax: no kinks, a smooth strongly monotone game
    x = np.zeros(30)
    for k in range(20_000):
        x = game.strategy_set.project(x + 200.0 * game.pseudo_gradient(x, theta))
    np.testing.assert_allclose(x, game.equilibrium(theta), atol=1e-8)


# -- derivatives vs finite differences ---------------------------------------------------------------
def _central(function, point, direction, eps=1e-6):
    return (function(point + eps * direction) - function(point - eps * direction)) / (2 * eps)


def _point_off_kinks(game, rng):
    while True:
        x = rng.uniform(0.5, game.params.max_labour - 0.5, game.params.n)
        income = game.params.skill * x
        if np.min(np.abs(income[:, None] - game.params.cutoffs[1:])) > 1e-3:
            return x


@pytest.mark.parametrize("seed", range(4))
def test_every_product_and_gradient_matches_finite_differences(seed):
    rng = np.random.default_rng(seed)
    game = _game(9, seed)
    n = 9
    x, theta = _point_off_kinks(game, rng), rng.uniform(0.0, 0.9, 7)
    tangent, cotangent, dtheta = rng.standard_normal(n), rng.standard_normal(n), rng.standard_normal(7)
    np.testing.assert_allclose(
        game.jvp_x(x, theta, tangent),
        _central(lambda z: game.pseudo_gradient(z, theta), x, tangent),
        atol=1e-8,
    )
    np.testing.assert_allclose(
        game.jvp_theta(x, theta, dtheta),
        _central(lambda t: game.pseudo_gradient(x, t), theta, dtheta),
        atol=1e-8,
    )
    assert cotangent @ game.jvp_x(x, theta, tangent) == pytest.approx(
        tangent @ game.vjp_x(x, theta, cotangent)
    )
    assert cotangent @ game.jvp_theta(x, theta, dtheta) == pytest.approx(
        dtheta @ game.vjp_theta(x, theta, cotangent)
    )
    structure = game.jacobian_x_structure(x, theta)
    np.testing.assert_allclose(
        game.jacobian_x(x, theta),
        np.diag(structure.diagonal) + structure.left @ structure.right.T,
        rtol=1e-12,
    )
    basis = np.eye(n)
    grad = np.array([_central(lambda z: game.social_cost(z, theta), x, e) for e in basis])
    np.testing.assert_allclose(game.social_cost_grad_x(x, theta), grad, rtol=1e-6, atol=1e-6)
    grad_theta = np.array([_central(lambda t: game.social_cost(x, t), theta, e) for e in np.eye(7)])
    np.testing.assert_allclose(game.social_cost_grad_theta(x, theta), grad_theta, rtol=1e-6, atol=1e-6)
    # v is the own-labour derivative of the payoff at the profile's lump sum (price-taking)
    own = np.array(
        [
            _central(lambda a, i=i: game.unilateral_rewards(x, theta, a[:, None])[i, 0], x, basis[i])
            for i in range(n)
        ]
    )
    np.testing.assert_allclose(game.pseudo_gradient(x, theta), own, atol=1e-7)
    np.testing.assert_allclose(game.unilateral_rewards(x, theta, x[:, None])[:, 0], game.rewards(x, theta))


def _same_piece(game, first, second):
    a, b = game.equilibrium_state(first), game.equilibrium_state(second)
    return (
        np.array_equal(a.free, b.free)
        and np.array_equal(a.bracket, b.bracket)
        and np.array_equal(a.income[~a.free], b.income[~b.free])
    )


def _hypergradient_check(game, theta, eps=1e-6):
    for e in np.eye(7):
        assert _same_piece(game, theta - eps * e, theta + eps * e), "finite difference crosses a kink of f*"
    fd = np.array([_central(game.equilibrium_social_cost, theta, e, eps) for e in np.eye(7)])
    exact = exact_hypergradient(game, theta)  # the generic path: projected map, pinned workers fixed
    np.testing.assert_allclose(exact, fd, rtol=1e-5, atol=1e-6 * np.abs(fd).max())
    np.testing.assert_allclose(game._hypergradient(theta), exact, rtol=1e-9, atol=1e-9 * np.abs(fd).max())
    return exact


def test_hypergradient_of_a_flat_tax_matches_fd():
    game = _game(25, 2)
    _hypergradient_check(game, np.full(7, 0.3))  # no kink: only box ends pin workers


def _bunching_schedule(game, rng):
    """A rising schedule with bunchers, away from the kinks of f*."""
    while True:
        theta = np.clip(_progressive(rng) + rng.uniform(0.02, 0.05, 7).cumsum(), 0.0, 0.95)
        state = game.equilibrium_state(theta)
        bunching = ~state.free & (state.labour > 0) & (state.labour < game.params.max_labour)
        pieces = [_same_piece(game, theta - 1e-6 * e, theta + 1e-6 * e) for e in np.eye(7)]
        if bunching.any() and all(pieces):
            return theta, state, bunching


@pytest.mark.parametrize("seed", range(3))
def test_generic_implicit_hypergradient_with_bunching_matches_finite_differences(seed):
    # the case a box-only free set got wrong: bunchers must be held like coordinates at a bound
    game = _game(40, seed)
    theta, state, bunching = _bunching_schedule(game, np.random.default_rng(100 + seed))
    pinned = game._pinned_coordinates(state.labour, theta)
    np.testing.assert_array_equal(pinned, bunching)
    exact = _hypergradient_check(game, theta)
    for step in (1.0, 50.0):  # at the equilibrium the result does not depend on the learner's step
        learner = EuclideanMirrorDescent(game.strategy_set, step)
        np.testing.assert_allclose(
            implicit_hypergradient(game, learner, state.labour, theta), exact, rtol=1e-9
        )
    # counterfactual: treating the bunchers as free gives a different (wrong) gradient
    unpinned = type(game)(game.params)
    unpinned._pinned_coordinates = lambda x, t: None
    assert not np.allclose(exact_hypergradient(unpinned, theta), exact, rtol=1e-3)


def test_frontier_gradients_match_finite_differences():
    game = _game(30, 4)
    theta = np.array([0.01, 0.05, 0.1, 0.3, 0.5, 0.6, 0.8])
    for e in np.eye(7):
        assert _same_piece(game, theta - 1e-6 * e, theta + 1e-6 * e)
    value_eq, grad_eq, value_prod, grad_prod = game._log_equality_and_productivity(theta)

    def logs(t):
        coin = game.equilibrium_state(t).coin
        return np.array([np.log(equality(coin)), np.log(productivity(coin))])

    fd = np.array([_central(logs, theta, e) for e in np.eye(7)])
    np.testing.assert_allclose(grad_eq, fd[:, 0], rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(grad_prod, fd[:, 1], rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose([value_eq, value_prod], logs(theta), rtol=1e-14)


# -- baselines, optimum and frontier -------------------------------------------------------------------
def test_baselines():
    game = _game(500, 0)
    np.testing.assert_array_equal(free_market_rates(game), np.zeros(7))
    np.testing.assert_array_equal(us_federal_rates(game), [0.10, 0.12, 0.22, 0.24, 0.32, 0.35, 0.37])
    with pytest.raises(ValueError, match="brackets"):
        us_federal_rates(TaxEconomyGame(TaxEconomyParams(np.ones(3), np.array([0.0, 1.0]))))
    rates = saez_rates(game)
    assert np.all((rates >= 0) & (rates <= 1))
    # the top bracket obeys Saez's high-income formula (1 − ḡ)/(1 − ḡ + ā ζ^u + η_I (ā − 1))
    free = game.equilibrium_state(np.zeros(7))
    top = free.bracket == 6
    above = free.income[top] - game.params.cutoffs[6]
    g_bar = rank_weights(free.coin)[top] @ above / above.sum()
    a_bar = free.income[top].sum() / above.sum()
    zeta_u = 1 / game.params.eta - 1
    assert rates[6] == pytest.approx((1 - g_bar) / (1 - g_bar + a_bar * zeta_u + (a_bar - 1)), rel=1e-12)
    # and every bracket with an interior rate solves its optimality condition
    shares = bracket_incomes(free.income, game.params.cutoffs)
    ratio = rates / (1 - rates)
    for b in range(7):
        inside = free.income[free.bracket == b].sum()
        rhs = (1 - rank_weights(free.coin)) @ shares[:, b] + shares[:, b] @ ratio[free.bracket]
        assert inside / game.params.eta * ratio[b] == pytest.approx(rhs, rel=1e-10)


def test_optimal_schedule_beats_the_baselines_and_restarts_agree():
    game = _game(40, 1)
    first = optimal_schedule(game, seed=0, popsize=5, maxiter=30)
    second = optimal_schedule(game, seed=1, popsize=5, maxiter=30)
    for baseline in (free_market_rates(game), us_federal_rates(game), saez_rates(game)):
        assert first.social_cost <= game.equilibrium_social_cost(baseline)
    assert first.social_cost == pytest.approx(game.equilibrium_social_cost(first.rates), rel=1e-14)
    assert first.equality * first.productivity == pytest.approx(-first.social_cost, rel=1e-12)
    assert second.social_cost == pytest.approx(first.social_cost, rel=0.01)
    rng = np.random.default_rng(0)
    for _ in range(50):
        assert first.social_cost <= game.equilibrium_social_cost(rng.uniform(0, 1, 7))


def test_social_optimum_is_the_cached_default_search():
    game = _game(6, 3)
    optimum = game.social_optimum()  # the default search (~13,000 equilibria, batched): about a second
    search = game.optimum()
    assert optimum.value == search.social_cost == game.equilibrium_social_cost(search.rates)
    np.testing.assert_array_equal(optimum.incentive, search.rates)
    np.testing.assert_array_equal(optimum.strategy, game.equilibrium(search.rates))
    assert game.social_optimum().value == optimum.value and game.optimum() is search
    rng = np.random.default_rng(1)
    assert all(optimum.value <= game.equilibrium_social_cost(rng.uniform(0, 1, 7)) for _ in range(200))
    # no better schedule nearby, and the local search of the oracle planner does not beat it
    assert optimum.value <= game.equilibrium_social_cost(optimal_incentive(game))
    for _ in range(50):
        nearby = np.clip(search.rates + 1e-4 * rng.standard_normal(7), 0.0, 1.0)
        assert optimum.value <= game.equilibrium_social_cost(nearby)


def test_batched_equilibria_equal_one_at_a_time():
    game = _game(50, 4)
    rng = np.random.default_rng(4)
    thetas = np.vstack([_progressive(rng) for _ in range(20)] + [rng.uniform(0, 1, (20, 7)), np.zeros(7)])
    batch = game._equilibria(thetas)
    for index, theta in enumerate(thetas):
        single = game.equilibrium_state(theta)
        for field, values in zip(single._fields, batch):
            np.testing.assert_array_equal(np.asarray(getattr(single, field)), values[index], err_msg=field)


def test_pareto_frontier_is_non_dominated_and_spans_both_ends():
    game = _game(20, 2)
    optimum = optimal_schedule(game, seed=0, popsize=5, maxiter=20)
    points = pareto_frontier(game, weights=[0.0, 0.5, 1.0], starts=[optimum.rates], samples=128)
    eq = np.array([point.equality for point in points])
    prod = np.array([point.productivity for point in points])
    assert np.all(np.diff(eq) > 0) and np.all(np.diff(prod) < 0)  # sorted and non-dominated
    for point in points:  # the values are those of the exact equilibrium
        coin = game.equilibrium_state(point.rates).coin
        assert (point.equality, point.productivity) == (equality(coin), productivity(coin))
    free = game.equilibrium_state(np.zeros(7)).coin
    assert prod[0] == productivity(free)  # productivity alone: no tax
    assert eq[-1] == pytest.approx(1.0)  # equality alone: confiscation, all coin e
    assert np.max(eq * prod) >= -optimum.social_cost * (1 - 1e-9)  # contains the eq × prod optimum
    for rates in (us_federal_rates(game), saez_rates(game)):  # baselines are not candidates, yet dominated
        coin = game.equilibrium_state(rates).coin
        assert np.any((eq >= equality(coin)) & (prod >= productivity(coin)))


# -- torch mirror -----------------------------------------------------------------------------------
def test_torch_mirror_agrees_with_the_numpy_model():
    game = _game(20, 5)
    mirror = TorchTaxEconomy(game.params)
    rng = np.random.default_rng(5)
    x, theta = _point_off_kinks(game, rng), rng.uniform(0, 0.9, 7)
    labour = torch.tensor(x, requires_grad=True)
    rates = torch.tensor(theta, requires_grad=True)
    coin = mirror.coin(labour, rates)
    np.testing.assert_allclose(coin.detach().numpy(), game.coin(x, theta), rtol=1e-14)
    np.testing.assert_allclose(
        mirror.utility(labour, rates).detach().numpy(), game.rewards(x, theta), rtol=1e-12
    )
    objective = -mirror.equality_times_productivity(coin)
    assert objective.item() == pytest.approx(game.social_cost(x, theta), rel=1e-14)
    grad_x, grad_theta = torch.autograd.grad(objective, (labour, rates))
    np.testing.assert_allclose(grad_x.numpy(), game.social_cost_grad_x(x, theta), rtol=1e-12)
    np.testing.assert_allclose(
        grad_theta.numpy(), game.social_cost_grad_theta(x, theta), rtol=1e-10, atol=1e-12
    )
    # price-taking marginal utility: differentiate with the lump sum held fixed
    fixed = game.lump_sum(x, theta)
    (v,) = torch.autograd.grad(mirror.utility(labour, rates, fixed).sum(), labour)
    np.testing.assert_allclose(v.numpy(), game.pseudo_gradient(x, theta), rtol=1e-12)


# -- the env -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs", [{"n_workers": 3}, {"n_workers": 6, "feedback_noise_std": 0.5}])
def test_pettingzoo_conformance(kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parallel_api_test(tax_economy_v0.parallel_env(max_cycles=40, **kwargs), num_cycles=100)
        api_test(tax_economy_v0.env(max_cycles=40, **kwargs), num_cycles=100)


def _rollout(seed, steps=50):
    env = tax_economy_v0.parallel_env(
        n_workers=5, max_cycles=steps, feedback_noise_std=0.3, feedback=("gradient",)
    )
    trace = [env.reset(seed=seed, options={"incentive": np.array(US_FEDERAL_2018_RATES)})]
    rng = np.random.default_rng(9)
    while env.agents:
        labour = rng.uniform(0.0, 100.0, size=(5, 1)).astype(np.float32)
        trace.append(env.step({agent: labour[i] for i, agent in enumerate(env.agents)}))
    return trace


def test_multi_step_determinism_under_a_seed():
    first, second = _rollout(seed=4), _rollout(seed=4)
    assert len(first) == 51 and all(identical(a, b) for a, b in zip(first, second))
    other = _rollout(seed=5)
    assert not np.array_equal(first[7][4]["worker_0"]["gradient"], other[7][4]["worker_0"]["gradient"])


def test_rewards_observations_and_feedback_follow_the_model():
    env = tax_economy_v0.parallel_env(
        n_workers=4, max_cycles=5, feedback=("gradient", "best_response", "payoffs")
    )
    observations, infos = env.reset(seed=0)
    game = env.game
    np.testing.assert_allclose(
        infos["worker_2"]["gradient"], game.pseudo_gradient(np.zeros(4), np.zeros(7))[2:3]
    )
    assert np.all(np.isfinite([infos[a]["gradient"] for a in env.agents]))  # the endowment keeps φ' finite
    rates = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    env.set_incentive(rates)
    labour = np.array([10.0, 50.0, 100.0, 0.0])
    observations, rewards, terminations, truncations, infos = env.step(
        {agent: labour[i : i + 1] for i, agent in enumerate(env.agents)}
    )
    p = game.params
    income = p.skill * labour
    tax = tax_liability(income, rates, p.cutoffs)
    coin = p.endowment + income - tax + tax.mean()
    utility = (coin ** (1 - p.eta) - 1) / (1 - p.eta) - p.labour_cost * labour
    np.testing.assert_allclose([rewards[a] for a in env.possible_agents], utility, rtol=1e-12)
    for i, agent in enumerate(env.possible_agents):
        expected = np.concatenate(([p.skill[i], income[i], coin[i], tax.mean()], rates))
        np.testing.assert_allclose(observations[agent], expected, rtol=1e-6)
        assert observations[agent].dtype == np.float32 and observations[agent] in env.observation_space(agent)
        np.testing.assert_allclose(infos[agent]["gradient"], game.pseudo_gradient(labour, rates)[i : i + 1])
        np.testing.assert_allclose(
            infos[agent]["best_response"], game.best_response(labour, rates)[i : i + 1]
        )
        np.testing.assert_allclose(
            infos[agent]["payoffs"], game.unilateral_rewards(labour, rates, env._payoff_actions)[i]
        )
        assert terminations[agent] is False and truncations[agent] is False
    assert "lump sum" in tax_economy_v0.parallel_env(n_workers=2, render_mode="ansi").render()


def test_registry_entry_and_capabilities():
    entry = registry()["tax_economy_v0"]
    assert entry.capabilities == {"model", "box", "best_response", "payoffs", "tax_schedule", "episodic"}
    game = entry.make_game(n_workers=5, instance_seed=3)
    assert isinstance(game, TaxEconomyGame) and game.params.n == 5
    np.testing.assert_array_equal(game.params.skill, TaxEconomyParams.pareto(5, seed=3).skill)
    assert make("tax_economy", n_workers=3).possible_agents == ["worker_0", "worker_1", "worker_2"]
    assert set(entry.parameters()) >= {"n_workers", "skill_shape", "max_labour", "coin_per_usd"}


def test_instance_spans_the_brackets():
    game = _game(1000, 0)
    p = game.params
    assert p.skill.min() >= 0.3 and np.allclose(p.cutoffs, US_CUTOFFS)
    counts = np.bincount(game.equilibrium_state(np.zeros(7)).bracket, minlength=7)
    assert np.all(counts > 0)  # free-market incomes fill every bracket


def test_throughput_reports_a_rate_per_size():
    result = tax_economy_script.throughput((100, 200), seconds=0.05)
    assert set(result) == {100, 200}
    assert all(rate["wall"] > 0 and rate["cpu"] > 0 for rate in result.values())


# -- validation -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad",
    [
        np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 1.5]),
        np.array([0.1, -0.2, 0.3, 0.4, 0.5, 0.6, 0.7]),
        np.array([0.1, np.nan, 0.3, 0.4, 0.5, 0.6, 0.7]),
        np.array([0.1, np.inf, 0.3, 0.4, 0.5, 0.6, 0.7]),
        np.zeros(6),
        np.zeros(8),
        "0.1",
        [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, None],
        np.zeros(7, dtype=complex),
    ],
)
def test_bad_schedules_raise_value_errors_naming_them(bad):
    game = _game(5)
    for call in (
        game.equilibrium,
        game.equilibrium_state,
        game.equilibrium_social_cost,
        lambda t: game.best_response_to_lump_sum(t, 1.0),
        lambda t: game.lump_sum(np.zeros(5), t),
        lambda t: game.coin(np.zeros(5), t),
    ):
        with pytest.raises(ValueError, match="theta"):
            call(bad)
    env = tax_economy_v0.parallel_env(n_workers=5)
    before = env.incentive
    with pytest.raises(ValueError, match="incentive"):
        env.set_incentive(bad)
    np.testing.assert_array_equal(env.incentive, before)  # a failed call changes nothing
    with pytest.raises(ValueError, match="incentive"):
        tax_economy_v0.parallel_env(n_workers=5, incentive=bad)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"skill": np.array([1.0, 0.0])}, "skill"),
        ({"skill": np.array([1.0])}, "skill"),
        ({"skill": np.array([1.0, np.nan])}, "skill"),
        ({"cutoffs": np.array([1.0, 2.0])}, "cutoffs"),
        ({"cutoffs": np.array([0.0, 2.0, 2.0])}, "cutoffs"),
        ({"cutoffs": np.zeros(0)}, "cutoffs"),
        ({"cutoffs": np.arange(65.0)}, "cutoffs"),
        ({"eta": 1.0}, "eta"),
        ({"eta": 0.0}, "eta"),
        ({"eta": "0.23"}, "eta"),
        ({"labour_cost": -0.21}, "labour_cost"),
        ({"max_labour": 0.0}, "max_labour"),
        ({"endowment": 0.0}, "endowment"),
        ({"endowment": True}, "endowment"),
    ],
)
def test_bad_parameters_raise_value_errors_naming_them(kwargs, name):
    base = {"skill": np.array([0.5, 1.0]), "cutoffs": np.array([0.0, 10.0])} | kwargs
    with pytest.raises(ValueError, match=name):
        TaxEconomyParams(**base)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"n_workers": 1}, "n_workers"),
        ({"n_workers": 10**8}, "n_workers"),
        ({"n_workers": 3.0}, "n_workers"),
        ({"skill_shape": 0.0}, "shape"),
        ({"skill_scale": -1.0}, "scale"),
        ({"coin_per_usd": 0.0}, "coin_per_usd"),
        ({"eta": 1.2}, "eta"),
        ({"instance_seed": -1}, "instance_seed"),
        ({"max_cycles": 0}, "max_cycles"),
        ({"feedback_noise_std": -1.0}, "feedback_noise_std"),
        ({"n_wrokers": 3}, "n_wrokers"),
    ],
)
def test_bad_env_parameters_raise_value_errors_naming_them(kwargs, name):
    with pytest.raises(ValueError, match=name):
        tax_economy_v0.parallel_env(**kwargs)


def test_other_bad_inputs():
    game = _game(5)
    with pytest.raises(ValueError, match="lump_sum"):
        game.best_response_to_lump_sum(np.zeros(7), -1.0)
    with pytest.raises(ValueError, match="lump_sum"):
        game.best_response_to_lump_sum(np.zeros(7), np.nan)
    with pytest.raises(ValueError, match="params"):
        TaxEconomyGame({"n": 5})
    with pytest.raises(ValueError, match="params"):
        TorchTaxEconomy({"n": 5})
    with pytest.raises(ValueError, match="weights"):
        pareto_frontier(game, weights=[0.5, 1.5])
    with pytest.raises(ValueError, match=r"starts\[0\]"):
        pareto_frontier(game, weights=[0.5], starts=[np.full(7, 2.0)])
    with pytest.raises(ValueError, match="samples"):
        pareto_frontier(game, weights=[0.5], samples=-1)
    with pytest.raises(ValueError, match="popsize"):
        optimal_schedule(game, popsize=0)
    with pytest.raises(ValueError, match="n must"):
        TaxEconomyParams.pareto(1)
    env = tax_economy_v0.parallel_env(n_workers=3)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="outside the action space"):
        env.step({"worker_0": np.array([101.0]), "worker_1": np.zeros(1), "worker_2": np.zeros(1)})


# -- the results script ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_quick_script_writes_the_issue_json_shape_and_the_plot(tmp_path):
    out, figure = tmp_path / "tax.json", tmp_path / "tax.png"
    tax_economy_script.main(
        ["--quick", "--n", "12", "--seeds", "0", "--one-step", "--json", str(out), "--plot", str(figure)]
    )
    results = json.loads(out.read_text())
    assert set(results["optimum"]) >= {"eq_times_prod", "equality", "productivity", "rates"}
    planners = [row["planner"] for row in results["runs"]]
    assert planners == [*tax_economy_script.PLANNERS, "meta_gradient_one_step"]
    for row in results["runs"]:
        assert set(row) >= {"planner", "seed", "equality", "productivity", "eq_times_prod", "rates", "wall_s"}
        assert row["eq_times_prod"] <= results["optimum"]["eq_times_prod"] * (1 + 1e-9)
        np.testing.assert_allclose(row["eq_times_prod"], row["equality"] * row["productivity"], rtol=1e-12)
    assert set(results["throughput"]) == set(results["throughput_cpu"]) == {"100", "1000", "10000"}
    assert figure.stat().st_size > 0
