"""Implicit hypergradients through any differentiable learner's fixed-point map, with the
linear solver injected (the jaxopt pattern: Blondel et al. 2022, "Efficient and Modular
Implicit Differentiation", NeurIPS).

The equilibrium is a fixed point ``x* = h_θ(x*)`` of the learner's update. With
``J_x = ∂h/∂x`` and ``J_θ = ∂h/∂θ``, the hypergradient of ``f*(θ) = f(θ, x*(θ))`` is one
adjoint solve (Liu et al. 2022, NeurIPS, eq. (4.5)):

    (I − J_x)ᵀ w = ∇_x f,        ∇f* = ∇_θ f + J_θᵀ w.

The learner provides the system (:meth:`agents.learners.DifferentiableLearner.adjoint_system`,
reduced to the free coordinates and structured where its map allows); a solver turns it into
a solution:

* :class:`WoodburySolver` — direct ``O(m r²)`` solve of a diagonal-plus-rank-``r`` system by
  the Sherman–Morrison–Woodbury identity (Cournot and the aggregative game: rank one; the
  oscillators: rank two);
* :class:`KrylovSolver` — matrix-free GMRES/CG/BiCGSTAB on the system's products;
* :class:`DenseSolver` — materialises the matrix (small games, tests);
* :class:`AutoSolver` (the default) — Woodbury where the system has structure, else GMRES.

Evaluated at the current strategy ``x_k`` instead of ``x*(θ_k)``, this is the surrogate
``∇̃f(θ, x)`` of the single-loop algorithms.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import scipy.sparse.linalg as sla

from agents.fixed_point import AdjointSystem
from agents.learners import DifferentiableLearner, equilibrium_map_learner
from incentive_envs.core import IncentiveGame
from incentive_envs.validation import check_choice, check_int, check_iteration, check_scalar


def _cross(a: np.ndarray, b: np.ndarray, rows: int) -> np.ndarray:
    """``aᵀ b`` over ``rows`` rows (vectors or ``(rows, r)`` matrices) where ``a`` or ``b`` may be
    one uniform row (first dimension 1, :class:`~incentive_envs.core.LowRankJacobian`'s
    convention)."""
    if a.shape[0] == 1 and b.shape[0] == 1:
        return rows * (a.T @ b)
    if a.shape[0] == 1:
        return a.T @ b.sum(axis=0, keepdims=True)
    if b.shape[0] == 1:
        return a.sum(axis=0, keepdims=True).T @ b
    return a.T @ b


@dataclass(frozen=True)
class WoodburySolver:
    """Direct solve of ``(diag(d) + L Rᵀ) z = b`` (Sherman–Morrison–Woodbury):
    ``z = D⁻¹b − D⁻¹L (I + Rᵀ D⁻¹ L)⁻¹ Rᵀ D⁻¹ b``, ``O(m r²)`` for ``m`` unknowns and rank ``r``
    (uniform parts of the structure cost ``O(1)``). Raises ``ValueError`` for a system without
    structure and ``LinAlgError`` if singular."""

    def __call__(self, system: AdjointSystem) -> np.ndarray:
        structure = system.structure
        if structure is None:
            raise ValueError("WoodburySolver needs an adjoint system with diagonal-plus-low-rank structure")
        diagonal, left, right = structure
        rows = system.rhs.size
        if diagonal.shape == (1,) and left.shape == right.shape == (1, 1):
            # d I + l r 11ᵀ (Cournot, the aggregative game): z = b/d − l r Σ(b/d) / (d + l r m)
            scalar = float(diagonal[0])
            if scalar == 0.0:
                raise np.linalg.LinAlgError("the diagonal of the adjoint system is zero")
            scaled_rhs = system.rhs / scalar
            if rows:
                product = float(left[0, 0] * right[0, 0])
                scaled_rhs -= product * float(np.add.reduce(scaled_rhs)) / (scalar + product * rows)
            return scaled_rhs
        if not diagonal.all():
            raise np.linalg.LinAlgError("the diagonal of the adjoint system has a zero entry")
        scaled_rhs = system.rhs / diagonal
        if rows == 0:
            return scaled_rhs
        if left.shape[1] == 1:  # Sherman–Morrison: scalar algebra
            scaled_u, v = left[:, 0] / diagonal, right[:, 0]
            scaled_rhs -= scaled_u * (_cross(v, scaled_rhs, rows) / (1.0 + _cross(v, scaled_u, rows)))
            return scaled_rhs
        scaled_left = left / diagonal[:, None]
        capacitance = np.eye(left.shape[1]) + _cross(right, scaled_left, rows)
        coefficients = np.linalg.solve(capacitance, _cross(right, scaled_rhs[:, None], rows))
        if scaled_left.shape[0] == 1:  # uniform rows: D⁻¹L c is one number per rank
            scaled_rhs -= float(scaled_left[0] @ coefficients[:, 0])
        else:
            scaled_rhs -= scaled_left @ coefficients[:, 0]
        return scaled_rhs


_WOODBURY = WoodburySolver()


@dataclass(frozen=True)
class KrylovSolver:
    """Matrix-free solve of ``M z = b`` from products ``z ↦ M z`` (``scipy.sparse.linalg``).

    Parameters
    ----------
    method : {"gmres", "cg", "bicgstab"}
        ``cg`` needs ``M`` symmetric definite (it is, up to sign, for potential games).
    rtol : float
        Relative residual tolerance.
    maxiter : int or None
        Iteration cap (``None``: scipy's default).
    restart : int
        GMRES restart length (larger: more memory, more robust on non-normal systems).
    warm_start : bool
        Start each solve from the previous solution of the same size (single-loop planners
        solve a slowly changing system every iteration).
    """

    method: str = "gmres"
    rtol: float = 1e-10
    maxiter: int | None = None
    restart: int = 50
    warm_start: bool = False
    _previous: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_choice(self.method, "method", ("gmres", "cg", "bicgstab"))
        check_scalar(self.rtol, "rtol", low=0.0, low_inclusive=False)
        if self.maxiter is not None:
            check_int(self.maxiter, "maxiter", low=1)
        check_int(self.restart, "restart", low=1)

    def __call__(self, system: AdjointSystem) -> np.ndarray:
        b = system.rhs
        size = b.shape[0]
        if size == 0:
            return b.copy()
        operator = sla.LinearOperator((size, size), matvec=system.matvec, dtype=np.float64)
        routine = {"gmres": sla.gmres, "cg": sla.cg, "bicgstab": sla.bicgstab}[self.method]
        kwargs = {"rtol": self.rtol, "atol": 0.0, "maxiter": self.maxiter}
        if self.warm_start and size in self._previous:
            kwargs["x0"] = self._previous[size]
        if self.method == "gmres":
            kwargs["restart"] = min(size, self.restart)
        solution, info = routine(operator, b, **kwargs)
        if info != 0:
            residual = np.linalg.norm(system.matvec(solution) - b) / max(np.linalg.norm(b), 1e-300)
            if not residual <= 1e3 * self.rtol:
                raise np.linalg.LinAlgError(
                    f"{self.method} did not converge (info={info}, relative residual {residual:.3g})"
                )
        if self.warm_start:
            self._previous[size] = solution
        return solution


@dataclass(frozen=True)
class DenseSolver:
    """Direct solve: materialises ``M`` column by column from its products (small systems)."""

    def __call__(self, system: AdjointSystem) -> np.ndarray:
        size = system.rhs.shape[0]
        if size == 0:
            return system.rhs.copy()
        matrix = np.stack([system.matvec(column) for column in np.eye(size)], axis=1)
        return scipy.linalg.solve(matrix, system.rhs)


@dataclass(frozen=True)
class AutoSolver:
    """:class:`WoodburySolver` when the system has diagonal-plus-low-rank structure, else
    ``krylov`` (default GMRES)."""

    krylov: KrylovSolver = field(default_factory=KrylovSolver)

    def __call__(self, system: AdjointSystem) -> np.ndarray:
        if system.structure is not None:
            return _WOODBURY(system)
        return self.krylov(system)


DEFAULT_SOLVER = AutoSolver()


def check_differentiable(learner, name: str = "learner") -> DifferentiableLearner:
    """``learner`` if it owns a differentiable fixed-point map, else ``ValueError``."""
    if not isinstance(learner, DifferentiableLearner):
        raise ValueError(
            f"{name} {learner!r} has no differentiable fixed-point map; implicit differentiation "
            "needs one (e.g. EuclideanMirrorDescent or EntropicMirrorDescent as the planner's "
            "model of the followers)"
        )
    return learner


def _implicit_hypergradient(game, learner, x, theta, k, solver) -> np.ndarray:
    """Unchecked :func:`implicit_hypergradient` (the planners' inner loop)."""
    system = learner.adjoint_system(game, x, theta, k, game._social_cost_grad_x(x, theta))
    hypergradient = system.theta_term(solver(system))
    gradient_theta = game._social_cost_grad_theta(x, theta)
    if gradient_theta is not getattr(game, "_zero_incentive_gradient", None):  # pure transfers: ∇_θ f = 0
        hypergradient += gradient_theta
    return hypergradient


def implicit_hypergradient(
    game: IncentiveGame,
    learner: DifferentiableLearner,
    x,
    theta,
    k: int = 0,
    solver=None,
) -> np.ndarray:
    """``∇̃f(θ, x) = ∇_θ f + J_θᵀ w`` with ``(I − J_x)ᵀ w = ∇_x f`` through ``learner``'s map.

    Parameters
    ----------
    game : IncentiveGame
    learner : DifferentiableLearner
        Whose fixed-point map (with its step of iteration ``k``) is differentiated.
    x, theta : array_like
        Where to evaluate (the exact hypergradient ``∇f*(θ)`` at ``x = x*(θ)``).
    k : int
        The iteration whose learner step defines the map.
    solver : callable ``AdjointSystem -> z``, optional
        Default :class:`AutoSolver`.
    """
    learner = check_differentiable(learner)
    x, theta = game.validate_strategy(x), game.validate_incentive(theta)
    k = check_iteration(k)
    return _implicit_hypergradient(game, learner, x, theta, k, DEFAULT_SOLVER if solver is None else solver)


def exact_hypergradient(
    game: IncentiveGame, theta, learner: DifferentiableLearner | None = None, solver=None
):
    """``∇f*(θ)`` at the exact equilibrium ``x*(θ)``. At a fixed point the result does not
    depend on the map; default ``learner``: :func:`agents.learners.equilibrium_map_learner`."""
    theta = game.validate_incentive(theta)
    learner = equilibrium_map_learner(game.strategy_set) if learner is None else check_differentiable(learner)
    x = game._equilibrium(theta)
    return _implicit_hypergradient(game, learner, x, theta, 0, DEFAULT_SOLVER if solver is None else solver)
