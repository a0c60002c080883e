"""Planners: implicit hypergradients against finite differences, convergence, baselines."""

import numpy as np
import pytest

from agents import BestResponse, EntropicMirrorDescent, EuclideanMirrorDescent, Hedge, PowerSchedule
from agents.fixed_point import AdjointSystem
from incentive_envs import (
    AggregativeGame,
    AggregativeParams,
    CournotGame,
    CournotParams,
    OscillatorGame,
    OscillatorParams,
)
from incentive_envs.core import IncentiveGame, IncentiveSet, LowRankJacobian, StrategySet
from planners import (
    AutoSolver,
    DenseSolver,
    DoubleLoopPlanner,
    FixedIncentivePlanner,
    KrylovSolver,
    NoIncentivePlanner,
    OraclePlanner,
    SingleLoopPlanner,
    WoodburySolver,
    ZerothOrderPlanner,
    exact_hypergradient,
    implicit_hypergradient,
    optimal_incentive,
    simulate,
)


def _objective_fd(game, theta, eps=1e-5):
    """Central differences of θ ↦ f(θ, x*(θ)) with the exact equilibrium solver."""
    basis = np.eye(theta.shape[0])
    return np.array(
        [
            (game.equilibrium_social_cost(theta + eps * e) - game.equilibrium_social_cost(theta - eps * e))
            / (2 * eps)
            for e in basis
        ]
    )


def _run(game, planner, learner, iterations):
    *_, last = simulate(game, learner, planner, iterations=iterations, metrics=())
    return last.estimate, last.strategy


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(
    "solver",
    [KrylovSolver(), KrylovSolver("cg"), DenseSolver(), WoodburySolver(), AutoSolver()],
    ids=["gmres", "cg", "dense", "woodbury", "auto"],
)
def test_hypergradient_matches_finite_differences_with_boundary_firms(seed, solver):
    rng = np.random.default_rng(seed)
    n = 25
    game = CournotGame(CournotParams.paper(n=n, k=rng.uniform(0.2, 3.0), tau=rng.uniform(1, 10), seed=seed))
    theta = rng.uniform(-20, 80, size=n)
    x_star = game.equilibrium(theta)
    # stay away from kinks of x*(θ) so central differences are valid
    v = game.pseudo_gradient(x_star, theta)
    assert np.all((x_star > 1e-3) | (v < -1e-3))
    shut = np.sum(x_star == 0.0)
    assert 0 < shut < n, "the instance must have firms at the boundary and inside"
    hypergradient = exact_hypergradient(game, theta, solver=solver)
    fd = _objective_fd(game, theta)
    np.testing.assert_allclose(hypergradient, fd, rtol=1e-5, atol=1e-5 * np.abs(fd).max())
    # shut-down firms' taxes do not move the equilibrium locally
    np.testing.assert_array_equal(hypergradient[x_star == 0.0], 0.0)


def test_hypergradient_is_eq_4_3_in_the_interior():
    game = CournotGame(CournotParams.paper(n=12, k=1.0))
    theta = np.zeros(12)
    x = game.equilibrium(theta)
    assert np.all(x > 0)
    jac_x, jac_theta = game.jacobian_x(x, theta), game.jacobian_theta(x, theta)
    expected = game.social_cost_grad_theta(x, theta) - jac_theta.T @ np.linalg.solve(
        jac_x.T, game.social_cost_grad_x(x, theta)
    )
    np.testing.assert_allclose(exact_hypergradient(game, theta), expected, rtol=1e-10, atol=1e-10)


class _SimplexCongestion(IncentiveGame):
    """Test game on simplices: each population i splits over d routes with costs
    ``a_r + b_r y_r + θ_r`` where ``y_r = Σ_i x^{ir}`` (shared routes), plus the entropy term
    η(log x + 1), so v = −cost and the logit equilibrium is unique; f = Σ_r y_r (a_r + b_r y_r)."""

    def __init__(self, populations=2, routes=3, eta=0.5, seed=0):
        rng = np.random.default_rng(seed)
        self.routes, self.eta = routes, eta
        self.a, self.b = rng.uniform(1, 2, routes), rng.uniform(0.5, 1.5, routes)
        self.strategy_set = StrategySet("simplex", (routes,) * populations)
        self.incentive_set = IncentiveSet(np.zeros(routes), np.full(routes, 5.0))

    def _load(self, x):
        return x.reshape(-1, self.routes).sum(axis=0)

    def _rewards(self, x, theta):
        raise ValueError("not needed by these tests")

    def _pseudo_gradient(self, x, theta):
        cost = self.a + self.b * self._load(x) + theta
        return -(np.tile(cost, self.n_agents) + self.eta * (np.log(x) + 1.0))

    def _jvp_x(self, x, theta, tangent):
        return -(np.tile(self.b * self._load(tangent), self.n_agents) + self.eta * tangent / x)

    def _vjp_x(self, x, theta, cotangent):
        return self._jvp_x(x, theta, cotangent)

    def _jvp_theta(self, x, theta, tangent):
        return -np.tile(tangent, self.n_agents)

    def _vjp_theta(self, x, theta, cotangent):
        return -cotangent.reshape(-1, self.routes).sum(axis=0)

    def _equilibrium(self, theta):
        x = self.strategy_set.uniform_point()
        for _ in range(20000):  # logit dynamics, a contraction here; converged to 1e-14
            logits = self._pseudo_gradient(x, theta) / self.eta + np.log(x)
            logits = logits.reshape(-1, self.routes)
            new = np.exp(logits - logits.max(axis=1, keepdims=True))
            new = (new / new.sum(axis=1, keepdims=True)).ravel()
            x_next = 0.5 * x + 0.5 * new
            if np.max(np.abs(x_next - x)) < 1e-15:
                break
            x = x_next
        return x_next

    def _social_cost(self, x, theta):
        y = self._load(x)
        return float(y @ (self.a + self.b * y))

    def _social_cost_grad_x(self, x, theta):
        y = self._load(x)
        return np.tile(self.a + 2 * self.b * y, self.n_agents)

    def _social_cost_grad_theta(self, x, theta):
        return np.zeros(self.routes)

    def social_optimum(self):
        raise ValueError("not needed by these tests")


@pytest.mark.parametrize("beta", [0.3, 1.0])
@pytest.mark.parametrize("learner_class", [EntropicMirrorDescent, EuclideanMirrorDescent])
def test_hypergradient_through_either_simplex_map_matches_finite_differences(beta, learner_class):
    """Implicit differentiation is generic over the learner's map: the entropic map and the
    Euclidean projection onto the simplices give the same exact hypergradient at x*."""
    game = _SimplexCongestion()
    theta = np.array([0.3, 1.0, 0.1])
    x = game.equilibrium(theta)
    fd = _objective_fd(game, theta, eps=1e-4)
    learner = learner_class(game.strategy_set, beta)
    hypergradient = implicit_hypergradient(game, learner, x, theta)
    np.testing.assert_allclose(hypergradient, fd, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    "game",
    [
        CournotGame(CournotParams.paper(n=30, k=0.5, tau=3.0, seed=2)),
        AggregativeGame(AggregativeParams.default(n=30, seed=1)),
        OscillatorGame(OscillatorParams.default(n=30, seed=4)),
    ],
    ids=["cournot", "aggregative", "oscillators"],
)
def test_woodbury_solve_of_the_structured_adjoint_system_equals_the_dense_solve(game):
    rng = np.random.default_rng(0)
    theta = game.incentive_set.project(rng.uniform(-3, 3, game.incentive_set.dim))
    x = game.strategy_set.project(game.equilibrium(theta) + rng.uniform(-0.5, 0.5, game.strategy_set.dim))
    learner = EuclideanMirrorDescent(game.strategy_set, 0.05)
    system = learner.adjoint_system(game, x, theta, 0, game.social_cost_grad_x(x, theta))
    assert system.structure is not None and 0 < system.rhs.size
    np.testing.assert_allclose(WoodburySolver()(system), DenseSolver()(system), rtol=1e-10, atol=1e-12)


def test_single_loop_reaches_the_unique_optimal_tax_with_k_positive():
    game = CournotGame(CournotParams.paper(n=20, k=5.0, tau=1.0))
    first_best = game.first_best_incentive()
    assert first_best.unique
    learner = EuclideanMirrorDescent(game.strategy_set, 1.5 / 21)
    planner = SingleLoopPlanner(game, learner, 1.0)
    theta, _ = _run(game, planner, learner, 1500)
    f_star = game.social_optimum().value
    assert np.sum((theta - first_best.theta) ** 2) < 1e-4
    assert (game.equilibrium_social_cost(theta) - f_star) / abs(f_star) < 1e-4


def test_single_loop_with_theorem_5_4_schedules_converges():
    game = CournotGame(CournotParams.paper(n=20, k=5.0, tau=1.0))
    learner = EuclideanMirrorDescent(game.strategy_set, PowerSchedule(1.5 / 21, 2 / 3))
    planner = SingleLoopPlanner(game, learner, PowerSchedule(3.0, 1.0))
    theta, _ = _run(game, planner, learner, 4000)
    f_star = game.social_optimum().value
    assert (game.equilibrium_social_cost(theta) - f_star) / abs(f_star) < 1e-3


def test_single_loop_on_the_paper_instance_k0_closes_the_welfare_gap():
    game = CournotGame(CournotParams.paper(n=100, k=0.0))
    learner = EuclideanMirrorDescent(game.strategy_set, 1.5 / 101)
    planner = SingleLoopPlanner(game, learner, 1.0)
    theta, _ = _run(game, planner, learner, 600)
    w_star = -game.social_optimum().value
    welfare = -game.equilibrium_social_cost(theta)
    assert (w_star - welfare) / abs(w_star) < 1e-3


@pytest.mark.parametrize("differentiation", ["implicit", "unrolled"])
def test_double_loops_follow_the_exact_hypergradient(differentiation):
    game = CournotGame(CournotParams.paper(n=10, k=2.0, tau=2.0))
    learner = EuclideanMirrorDescent(game.strategy_set, 1.5 / 11)
    planner = DoubleLoopPlanner(game, learner, 0.5, differentiation=differentiation, tolerance=1e-12)
    theta = np.linspace(0.0, 30.0, 10)
    x = planner.advance_followers(learner, game.strategy_set.uniform_point(), theta, 0)
    np.testing.assert_allclose(x, game.equilibrium(theta), atol=1e-9)
    updated = planner.update(theta, x, 0)
    expected = game.incentive_set.project(theta - 0.5 * exact_hypergradient(game, theta))
    np.testing.assert_allclose(updated, expected, rtol=1e-6, atol=1e-6)


def test_oracle_objective_equals_f_star_and_generic_oracle_agrees():
    game = CournotGame(CournotParams.paper(n=30, k=1.0, tau=3.0))
    oracle = OraclePlanner(game)
    f_star = game.social_optimum().value
    assert game.equilibrium_social_cost(oracle.initial_incentive()) == pytest.approx(f_star, rel=1e-12)
    # the model-agnostic route (L-BFGS-B over exact equilibria) is local: it ends at a
    # stationary point of f* (projected hypergradient 0) within 1e-5 of f*, never below it

    class NoClosedForm(CournotGame):
        def first_best_incentive(self):
            return None

    generic = optimal_incentive(NoClosedForm(game.params))
    value = game.equilibrium_social_cost(generic)
    assert f_star - 1e-9 * abs(f_star) <= value <= f_star + 1e-5 * abs(f_star)
    step = generic - game.incentive_set.project(generic - exact_hypergradient(game, generic))
    assert np.max(np.abs(step)) < 1e-4


def test_fixed_and_no_incentive_planners_hold_still():
    game = CournotGame(CournotParams.paper(n=5))
    x = np.ones(5)
    assert np.array_equal(NoIncentivePlanner(game).update(np.full(5, 3.0), x, 0), np.zeros(5))
    fixed = FixedIncentivePlanner(game, np.arange(5.0))
    assert np.array_equal(fixed.update(np.zeros(5), x, 7), np.arange(5.0))
    with pytest.raises(ValueError, match="incentive"):
        FixedIncentivePlanner(game, np.full(5, 1e6))


def test_zeroth_order_planner_improves_welfare_from_cost_observations_only():
    game = CournotGame(CournotParams.paper(n=5, k=2.0, tau=2.0))
    planner = ZerothOrderPlanner(game, 0, gain=2.0, perturbation=0.5, probe_steps=30)
    # stable follower step: below 2 / ‖∂v/∂x‖ = 2 / (γ(n + 1) + k) = 0.25
    learner = EuclideanMirrorDescent(game.strategy_set, 0.1)
    f_star = game.social_optimum().value
    start_gap = game.equilibrium_social_cost(planner.initial_incentive()) - f_star
    theta, _ = _run(game, planner, learner, 6000)
    assert game.equilibrium_social_cost(theta) - f_star < 0.01 * start_gap


def test_planner_argument_errors():
    game = CournotGame(CournotParams.paper(n=5))
    learner = EuclideanMirrorDescent(game.strategy_set, 0.1)
    with pytest.raises(ValueError, match="differentiation"):
        DoubleLoopPlanner(game, learner, differentiation="magic")
    with pytest.raises(ValueError, match="tolerance"):
        DoubleLoopPlanner(game, learner, tolerance=0.0)
    with pytest.raises(ValueError, match="warm_start"):
        DoubleLoopPlanner(game, learner, warm_start="no")
    with pytest.raises(ValueError, match="seed"):
        ZerothOrderPlanner(game, seed=1.5)
    with pytest.raises(ValueError, match="method"):
        KrylovSolver("lu")
    with pytest.raises(ValueError, match="step_size"):
        SingleLoopPlanner(game, learner, -1.0)
    with pytest.raises(ValueError, match="game"):
        SingleLoopPlanner("cournot", learner)
    with pytest.raises(ValueError, match="structure"):
        WoodburySolver()(
            EntropicMirrorDescent(StrategySet("simplex", (2,)), 0.1).adjoint_system(
                _SimplexCongestion(1, 2), np.array([0.5, 0.5]), np.zeros(2), 0, np.ones(2)
            )
        )
    with pytest.raises(ValueError, match=r"theta\[0\] = 1000000.0 is outside"):
        SingleLoopPlanner(game, learner).update(np.full(5, 1e6), np.zeros(5), 0)


@pytest.mark.parametrize("learner_class", [BestResponse, Hedge])
def test_implicit_planners_need_a_differentiable_map_at_construction(learner_class):
    """A planner given a learner without a fixed-point map says so when it is built, and
    accepts an explicit model of the followers instead."""
    game = CournotGame(CournotParams.paper(n=5, k=1.0))
    learner = learner_class(game.strategy_set)
    for build in (
        lambda **kwargs: SingleLoopPlanner(game, learner, **kwargs),
        lambda **kwargs: DoubleLoopPlanner(game, learner, **kwargs),
    ):
        with pytest.raises(ValueError, match="no differentiable fixed-point map"):
            build()
        build(follower_model=EuclideanMirrorDescent(game.strategy_set, 0.1))
    with pytest.raises(ValueError, match="no differentiable fixed-point map"):
        DoubleLoopPlanner(game, learner, differentiation="unrolled")


def test_unrolled_differentiation_through_entropic_learners_matches_the_implicit_gradient():
    """AD backpropagates through any differentiable learner's own update (here the entropic
    one, mixing included); at convergence it agrees with the implicit hypergradient."""
    game = _SimplexCongestion()
    learner = EntropicMirrorDescent(game.strategy_set, 0.5, mixing=PowerSchedule(0.3, 2.0))
    theta = np.array([0.3, 1.0, 0.1])
    planner = DoubleLoopPlanner(game, learner, 0.1, differentiation="unrolled", tolerance=1e-13)
    x = planner.advance_followers(learner, game.strategy_set.uniform_point(), theta, 0)
    np.testing.assert_allclose(x, game.equilibrium(theta), atol=1e-10)
    expected = implicit_hypergradient(game, learner, x, theta)
    np.testing.assert_allclose(planner._gradient, expected, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("uniform", [(), ("diagonal",), ("left",), ("right",), ("diagonal", "left", "right")])
@pytest.mark.parametrize("rank", [1, 2])
def test_woodbury_handles_parts_stored_as_one_uniform_row(uniform, rank):
    """A structure part of first dimension 1 stands for equal rows: restricting it to a subset
    of coordinates and solving give what the materialised matrix gives."""
    rng = np.random.default_rng(rank)
    dim, free = 12, np.array([0, 3, 4, 9, 11])
    parts = {
        "diagonal": rng.uniform(2.0, 3.0, 1 if "diagonal" in uniform else dim),
        "left": rng.normal(size=(1 if "left" in uniform else dim, rank)),
        "right": rng.normal(size=(1 if "right" in uniform else dim, rank)),
    }
    structure = LowRankJacobian(**parts)
    dense = structure.dense(dim)
    reduced = structure.restrict(free, transpose=True)
    np.testing.assert_allclose(reduced.dense(free.size), dense[np.ix_(free, free)].T, rtol=1e-14)
    rhs = rng.normal(size=free.size)
    system = AdjointSystem(lambda z: reduced.dense(free.size) @ z, rhs, lambda z: z, reduced)
    np.testing.assert_allclose(
        WoodburySolver()(system), np.linalg.solve(dense[np.ix_(free, free)].T, rhs), rtol=1e-10
    )
