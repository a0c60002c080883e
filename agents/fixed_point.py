"""The fixed-point maps of the differentiable learners and their derivatives.

A learner's update ``x_{k+1} = h_θ(x_k)`` has the game's equilibria as fixed points
``x* = h_θ(x*)``. With ``J_x = ∂h/∂x`` and ``J_θ = ∂h/∂θ``, the hypergradient of
``f*(θ) = f(θ, x*(θ))`` is one adjoint solve (Liu et al. 2022, "Inducing Equilibria via
Incentives: Simultaneous Design-and-Play Ensures Global Convergence", NeurIPS, eq. (4.5)):

    (I − J_x)ᵀ w = ∇_x f,        ∇f* = ∇_θ f + J_θᵀ w.

Each map here provides its value, its vector–Jacobian products (what unrolled
differentiation backpropagates through) and its adjoint system (:class:`AdjointSystem`, what
implicit differentiation solves), reduced and structured where the map allows, so that
:func:`planners.hypergradient.implicit_hypergradient` is generic over maps while a
diagonal-plus-low-rank game is solved directly in ``O(m r²)``:

* the projected-gradient map ``h_θ(x) = Proj_X(x + β v_θ(x))`` (Algorithm 1): on boxes its
  Jacobian is the mask ``D`` of *free* coordinates times ``I + β ∂v/∂x``; the adjoint system
  reduces to the free block, ``[∂v/∂x]_FFᵀ y = (∇_x f)_F`` and ``J_θᵀ w = −[∂v/∂θ]ᵀ embed_F(y)``
  — eq. (4.3) restricted to the free set, independent of β; on simplices the projection's
  Jacobian is ``I − 11ᵀ/|S|`` on each block's support;
* the entropic map ``h^i_θ(x) = x^i exp(β v^i_θ(x)) / ‖x^i exp(β v^i_θ(x))‖_1`` (Remark 4.3;
  simplices), with ``J_x t = P_h(t / x + β [∂v/∂x] t)`` and ``J_θ s = β P_h [∂v/∂θ] s``,
  ``P_h u = h ⊙ u − h (hᵀu)`` per agent block.

All functions here are unchecked (the engine's inner loop): the learners' public methods
validate their inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from incentive_envs.core import IncentiveGame, LowRankJacobian


class AdjointSystem(NamedTuple):
    """The adjoint system of a fixed-point map in the coordinates a solver works in.

    ``M z = rhs`` with ``M`` given by ``matvec`` (and, when known, ``structure``: ``M`` as
    diagonal plus low rank); ``theta_term(z)`` turns the solution into ``J_θᵀ w``.

    Attributes
    ----------
    matvec : callable
        ``z -> M z``.
    rhs : ndarray
    theta_term : callable
        ``z -> J_θᵀ w`` (shape ``(incentive dim,)``).
    structure : LowRankJacobian or None
        ``M = diag(diagonal) + left @ right.T``.
    """

    matvec: Callable[[np.ndarray], np.ndarray]
    rhs: np.ndarray
    theta_term: Callable[[np.ndarray], np.ndarray]
    structure: LowRankJacobian | None = None


# -- the projected-gradient map -------------------------------------------------------------


def projected_map(game: IncentiveGame, x: np.ndarray, theta: np.ndarray, beta: float) -> np.ndarray:
    """``h_θ(x) = Proj_X(x + β v_θ(x))``."""
    return game.strategy_set.project(x + beta * game._pseudo_gradient(x, theta))


def free_coordinates(game: IncentiveGame, x: np.ndarray, theta: np.ndarray, beta: float) -> np.ndarray | None:
    """Box sets: indices where ``Proj_X(x + βv)`` has unit derivative (strictly inside the box
    after the step, and not pinned at a payoff kink: ``IncentiveGame._pinned_coordinates``);
    ``None`` when every coordinate is free (unconstrained sets)."""
    strategy_set = game.strategy_set
    if strategy_set.kind == "unconstrained":
        return None
    step = game._pseudo_gradient(x, theta)  # x + βv, in place (few large temporaries)
    step *= beta
    step += x
    lower, upper = strategy_set.interior_bounds  # strictly inside, by 1e-12 relative
    free = step > lower
    free &= step < upper
    pinned = game._pinned_coordinates(x, theta)
    if pinned is not None:
        free &= ~pinned
    return free.nonzero()[0]


def _simplex_projection_jacobian(game: IncentiveGame, x: np.ndarray, theta: np.ndarray, beta: float):
    """The (symmetric) Jacobian of the Euclidean projection onto the simplices at ``x + βv``:
    on each block's support ``S`` (coordinates projected to a positive share) it is
    ``I − 11ᵀ/|S|``, and zero off the support (Martins & Astudillo 2016, "From Softmax to
    Sparsemax", ICML, Prop. 2)."""
    strategy_set = game.strategy_set
    support = (strategy_set.project(x + beta * game._pseudo_gradient(x, theta)) > 0.0).astype(np.float64)
    counts = np.repeat(strategy_set.block_sum(support), strategy_set.agent_sizes)

    def apply(u: np.ndarray) -> np.ndarray:
        mean = np.repeat(strategy_set.block_sum(support * u), strategy_set.agent_sizes) / counts
        return support * (u - mean)

    return apply


def projected_map_vjp(
    game: IncentiveGame, x: np.ndarray, theta: np.ndarray, beta: float, cotangent: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(J_xᵀ w, J_θᵀ w)`` of the projected map: ``J_x = P (I + β ∂v/∂x)``, ``J_θ = β P ∂v/∂θ``
    with ``P`` the projection's Jacobian (the free-coordinate mask on boxes)."""
    if game.strategy_set.kind == "simplex":
        masked = _simplex_projection_jacobian(game, x, theta, beta)(cotangent)
    else:
        free = free_coordinates(game, x, theta, beta)
        masked = cotangent.copy() if free is None else np.zeros_like(cotangent)
        if free is not None:
            masked[free] = cotangent[free]
    return masked + beta * game._vjp_x(x, theta, masked), beta * game._vjp_theta(x, theta, masked)


def projected_adjoint_system(
    game: IncentiveGame, x: np.ndarray, theta: np.ndarray, beta: float, grad_x: np.ndarray
) -> AdjointSystem:
    """The projected map's adjoint system. On boxes it is reduced to the free set (module
    docstring): ``[∂v/∂x]_FFᵀ y = (∇_x f)_F``, ``J_θᵀ w = −[∂v/∂θ]ᵀ embed_F(y)``, diagonal plus
    low rank whenever the game's ``∂v/∂x`` is (then ``[∂v/∂x]_FFᵀ = diag(d_F) + R_F L_Fᵀ``). On
    simplices it is ``(I − P − β [∂v/∂x]ᵀ P) w = ∇_x f`` matrix-free."""
    if game.strategy_set.kind == "simplex":
        project = _simplex_projection_jacobian(game, x, theta, beta)

        def simplex_matvec(w: np.ndarray) -> np.ndarray:
            projected = project(w)
            return w - projected - beta * game._vjp_x(x, theta, projected)

        return AdjointSystem(simplex_matvec, grad_x, lambda w: beta * game._vjp_theta(x, theta, project(w)))
    free = free_coordinates(game, x, theta, beta)
    structure = game._jacobian_x_structure(x, theta)
    if free is None:
        free = slice(None)
    dim = x.shape[0]

    def embed(z: np.ndarray) -> np.ndarray:
        padded = np.zeros(dim)
        padded[free] = z
        return padded

    def matvec(z: np.ndarray) -> np.ndarray:
        return game._vjp_x(x, theta, embed(z))[free]

    def theta_term(z: np.ndarray) -> np.ndarray:
        if game.linear_prices:  # ∂v/∂θ = −I: −[∂v/∂θ]ᵀ embed_F(y) is embed_F(y)
            return embed(z)
        term = game._vjp_theta(x, theta, embed(z))
        return np.negative(term, out=term)

    reduced = None if structure is None else structure.restrict(free, transpose=True)
    return AdjointSystem(matvec, grad_x[free], theta_term, reduced)


# -- the entropic map (simplices) -----------------------------------------------------------


def entropic_map(game: IncentiveGame, x: np.ndarray, theta: np.ndarray, beta: float) -> np.ndarray:
    """``h^i_θ(x) ∝ x^i exp(β v^i_θ(x))`` per simplex block (Remark 4.3, rewards convention)."""
    return game.strategy_set.exponentiated(x, beta * game._pseudo_gradient(x, theta))


def _entropic_parts(game, x, theta, beta):
    strategy_set = game.strategy_set
    mapped = entropic_map(game, x, theta, beta)
    safe_x = np.maximum(x, np.finfo(float).tiny)

    def project(u: np.ndarray) -> np.ndarray:  # P_h u = h ⊙ u − h (hᵀu) per block
        return mapped * u - mapped * np.repeat(strategy_set.block_sum(mapped * u), strategy_set.agent_sizes)

    return project, safe_x


def entropic_map_vjp(
    game: IncentiveGame, x: np.ndarray, theta: np.ndarray, beta: float, cotangent: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(J_xᵀ w, J_θᵀ w)`` of the entropic map (``P_h`` is symmetric)."""
    project, safe_x = _entropic_parts(game, x, theta, beta)
    projected = project(cotangent)
    return projected / safe_x + beta * game._vjp_x(x, theta, projected), beta * game._vjp_theta(
        x, theta, projected
    )


def entropic_adjoint_system(
    game: IncentiveGame, x: np.ndarray, theta: np.ndarray, beta: float, grad_x: np.ndarray
) -> AdjointSystem:
    """``(I − J_x)ᵀ w = ∇_x f`` of the entropic map, matrix-free; ``J_θᵀ w = β [∂v/∂θ]ᵀ P_h w``."""
    project, safe_x = _entropic_parts(game, x, theta, beta)

    def matvec(w: np.ndarray) -> np.ndarray:
        projected = project(w)
        return w - projected / safe_x - beta * game._vjp_x(x, theta, projected)

    def theta_term(w: np.ndarray) -> np.ndarray:
        return beta * game._vjp_theta(x, theta, project(w))

    return AdjointSystem(matvec, grad_x, theta_term)
