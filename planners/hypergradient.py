"""Implicit hypergradients through the learners' fixed-point map (SPEC §1, paper §4).

The equilibrium is a fixed point ``x* = h_θ(x*)`` of the learning dynamics. With
``J_x = ∂h/∂x`` and ``J_θ = ∂h/∂θ``, the hypergradient of ``f*(θ) = f(θ, x*(θ))`` is one
adjoint solve:

    (I − J_x)^T w = ∇_x f,        ∇f* = ∇_θ f + J_θ^T w        (paper eq. 4.5).

Two maps are supported, matching the two learners of the paper:

* ``"projected"`` — ``h_θ(x) = Proj_X(x + β v_θ(x))`` (Algorithm 1; boxes and unconstrained
  sets). The projection's Jacobian is the diagonal mask ``D`` of *free* coordinates
  (``lower < x + βv < upper``), and the adjoint system reduces to the free block,
  ``[∂v/∂x]_FF^T z = (∇_x f)_F`` and ``∇f* = ∇_θ f − [∂v/∂θ]^T embed_F(z)`` — eq. (4.3)
  restricted to the free set, independent of β.
* ``"entropic"`` — ``h^i_θ(x) = x^i exp(β v^i_θ(x)) / ‖x^i exp(β v^i_θ(x))‖_1`` (Remark 4.3;
  simplices), whose Jacobians are ``J_x t = P_h(t / x + β [∂v/∂x] t)`` and
  ``J_θ s = β P_h [∂v/∂θ] s`` with ``P_h u = h ⊙ u − h (hᵀu)`` per agent block.

Evaluated at the current strategy ``x_k`` instead of ``x*(θ_k)``, this is the surrogate
``∇̃f(θ, x)`` of the single-loop algorithms. The linear solver is injected (jaxopt-style):
:class:`KrylovSolver` (matrix-free, only Jacobian-vector products) or :class:`DenseSolver`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import scipy.sparse.linalg as sla

from incentive_envs.core import IncentiveGame
from incentive_envs.validation import check_scalar

FREE_SET_TOLERANCE = 1e-12


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
        if self.method not in ("gmres", "cg", "bicgstab"):
            raise ValueError(f"method must be 'gmres', 'cg' or 'bicgstab', got {self.method!r}")
        check_scalar(self.rtol, "rtol", low=0.0, low_inclusive=False)

    def __call__(self, matvec, b: np.ndarray) -> np.ndarray:
        size = b.shape[0]
        operator = sla.LinearOperator((size, size), matvec=matvec, dtype=np.float64)
        routine = {"gmres": sla.gmres, "cg": sla.cg, "bicgstab": sla.bicgstab}[self.method]
        kwargs = {"rtol": self.rtol, "atol": 0.0, "maxiter": self.maxiter}
        if self.warm_start and size in self._previous:
            kwargs["x0"] = self._previous[size]
        if self.method == "gmres":
            kwargs["restart"] = min(size, self.restart)
        solution, info = routine(operator, b, **kwargs)
        if info != 0:
            residual = np.linalg.norm(matvec(solution) - b) / max(np.linalg.norm(b), 1e-300)
            if not residual <= 1e3 * self.rtol:
                raise np.linalg.LinAlgError(
                    f"{self.method} did not converge (info={info}, relative residual {residual:.3g})"
                )
        if self.warm_start:
            self._previous[size] = solution
        return solution


@dataclass(frozen=True)
class DenseSolver:
    """Direct solve: materialises ``M`` column by column from ``matvec`` (small games)."""

    def __call__(self, matvec, b: np.ndarray) -> np.ndarray:
        identity = np.eye(b.shape[0])
        matrix = np.stack([matvec(column) for column in identity], axis=1)
        return scipy.linalg.solve(matrix, b)


def free_mask(game: IncentiveGame, x: np.ndarray, theta: np.ndarray, beta: float = 1.0) -> np.ndarray:
    """Coordinates where the projected-gradient map ``Proj_X(x + βv)`` is differentiable
    with unit derivative (strictly inside the box after the step)."""
    strategy_set = game.strategy_set
    if strategy_set.kind == "unconstrained":
        return np.ones(strategy_set.dim, dtype=bool)
    if strategy_set.kind != "box":
        raise ValueError(f"the projected map needs a box or unconstrained set, got {strategy_set.kind!r}")
    step = x + beta * game.pseudo_gradient(x, theta)
    scale = np.maximum(1.0, np.abs(step))
    return (step > strategy_set.lower + FREE_SET_TOLERANCE * scale) & (
        step < strategy_set.upper - FREE_SET_TOLERANCE * scale
    )


def projected_hypergradient(
    game: IncentiveGame,
    x: np.ndarray,
    theta: np.ndarray,
    solver=None,
    beta: float = 1.0,
) -> np.ndarray:
    """``∇̃f(θ, x)`` through the projected-gradient map (see the module docstring).

    Parameters
    ----------
    game : IncentiveGame
        With a box or unconstrained strategy set.
    x, theta : ndarray
        Where to evaluate (the exact hypergradient ``∇f*(θ)`` at ``x = x*(θ)``).
    solver : callable ``(matvec, b) -> z``, optional
        Default :class:`KrylovSolver` (GMRES).
    beta : float
        The learner's step, used only to decide which coordinates the map keeps free.
    """
    solver = KrylovSolver() if solver is None else solver
    free = free_mask(game, x, theta, beta)
    grad_x = game.social_cost_grad_x(x, theta)
    grad_theta = game.social_cost_grad_theta(x, theta)
    if not free.any():
        return grad_theta
    padded = np.zeros_like(x)

    def transpose_matvec(z: np.ndarray) -> np.ndarray:
        padded[free] = z
        return game.vjp_x(x, theta, padded)[free]

    adjoint = np.zeros_like(x)
    adjoint[free] = solver(transpose_matvec, grad_x[free])
    return grad_theta - game.vjp_theta(x, theta, adjoint)


def entropic_hypergradient(
    game: IncentiveGame,
    x: np.ndarray,
    theta: np.ndarray,
    solver=None,
    beta: float = 1.0,
) -> np.ndarray:
    """``∇̃f(θ, x)`` through the entropic map of Remark 4.3 (simplex strategy sets)."""
    strategy_set = game.strategy_set
    if strategy_set.kind != "simplex":
        raise ValueError(f"the entropic map needs a simplex strategy set, got {strategy_set.kind!r}")
    beta = check_scalar(beta, "beta", low=0.0, low_inclusive=False)
    solver = KrylovSolver() if solver is None else solver
    sizes = strategy_set.agent_sizes
    mapped = strategy_set.exponentiated(x, beta * game.pseudo_gradient(x, theta))
    safe_x = np.maximum(x, np.finfo(float).tiny)

    def project(u: np.ndarray) -> np.ndarray:  # P_h u = h ⊙ u − h (h^T u) per block
        return mapped * u - mapped * np.repeat(strategy_set.block_sum(mapped * u), sizes)

    def transpose_matvec(w: np.ndarray) -> np.ndarray:  # (I − J_x)^T w
        projected = project(w)
        return w - projected / safe_x - beta * game.vjp_x(x, theta, projected)

    adjoint = solver(transpose_matvec, game.social_cost_grad_x(x, theta))
    return game.social_cost_grad_theta(x, theta) + beta * game.vjp_theta(x, theta, project(adjoint))


def exact_hypergradient(game: IncentiveGame, theta: np.ndarray, solver=None) -> np.ndarray:
    """``∇f*(θ)`` at the exact equilibrium ``x*(θ)`` (box/unconstrained games: independent of β)."""
    x = game.equilibrium(theta)
    if game.strategy_set.kind == "simplex":
        return entropic_hypergradient(game, x, theta, solver)
    return projected_hypergradient(game, x, theta, solver)
