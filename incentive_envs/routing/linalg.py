"""Matrix-free linear algebra shared by the routing solvers."""

from __future__ import annotations

import numpy as np


def projected_cg(
    hessian_vector, center, precondition, gradient: np.ndarray, rtol: float, max_iterations: int
) -> tuple[np.ndarray, int]:
    """Minimise ``gᵀδ + ½ δᵀHδ`` over the subspace that ``center`` projects onto, by
    projected preconditioned conjugate gradients (Gould, Hribar & Nocedal (2001), "On the
    solution of equality constrained quadratic programming problems arising in
    optimization", *SIAM Journal on Scientific Computing* 23(4), 1376–1395).

    ``center`` removes from a residual what the constraints absorb (a per-block weighted
    mean for simplex constraints, or the entries of fixed variables) and together with the
    diagonal ``precondition`` is the preconditioned projection; residuals are re-centred
    every iteration so that ``rᵀPr`` carries no cancellation error. Stops when ``rᵀPr``
    falls by ``rtol``, on non-positive curvature, or after ``max_iterations``.

    Returns the step and the iterations taken.
    """
    step = np.zeros_like(gradient)
    residual = center(gradient)
    projected = precondition(residual)
    direction = -projected
    rho = float(residual @ projected)
    target = rtol * rho
    iterations = 0
    while rho > target and iterations < max_iterations:
        curvature = hessian_vector(direction)
        denominator = float(direction @ curvature)
        if not denominator > 0:
            break
        alpha = rho / denominator
        step += alpha * direction
        residual = center(residual + alpha * curvature)
        projected = precondition(residual)
        rho_next = float(residual @ projected)
        direction = -projected + (rho_next / rho) * direction
        rho = rho_next
        iterations += 1
    return step, iterations
