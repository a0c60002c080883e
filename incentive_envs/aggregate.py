"""Exact solution of the scalar equation behind aggregative games' equilibria and optima.

Many games here have a first-order condition per agent of the form
``x_i = clip((m_i − c A)/s_i, 0, u_i)`` where ``A = w Σ_j x_j`` is an aggregate (total output
in Cournot with ``w = 1``, the mean action in the aggregative game with ``w = 1/n``). The
aggregate then solves the scalar equation

    g(A) = A − w Σ_i clip((m_i − c A)/s_i, 0, u_i) = 0,

whose right-hand sum is non-increasing and piecewise linear in ``A``, so ``g`` is strictly
increasing. :func:`solve_aggregate` evaluates ``g`` at all breakpoints with sorted suffix
sums, brackets the root, and solves the linear equation of that segment's active set in
closed form: exact up to rounding, O(n log n), no iteration.
"""

from __future__ import annotations

import numpy as np


def _suffix_sums(values: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``out[j] = Σ_{r >= j} values[order[r]]``, with a trailing 0."""
    return np.concatenate((np.cumsum(values[order][::-1])[::-1], [0.0]))


def solve_aggregate(
    intercept: np.ndarray,
    coupling: float,
    curvature: np.ndarray | float,
    cap: np.ndarray | float,
    weight: float = 1.0,
) -> float:
    """The unique nonnegative root ``A`` of ``A = w Σ_i clip((m_i − cA)/s_i, 0, u_i)``.

    Parameters
    ----------
    intercept : ndarray, shape (n,)
        ``m_i``.
    coupling : float
        ``c > 0``, how strongly the aggregate lowers every agent's marginal payoff.
    curvature : float or ndarray
        ``s_i > 0``.
    cap : float or ndarray
        Upper bounds ``u_i > 0`` (``inf`` allowed).
    weight : float
        ``w > 0`` (1 for a sum, ``1/n`` for a mean).
    """
    n = intercept.shape[0]
    curvature = np.broadcast_to(np.asarray(curvature, dtype=np.float64), (n,))
    cap = np.broadcast_to(np.asarray(cap, dtype=np.float64), (n,))
    with np.errstate(over="ignore", invalid="ignore"):  # a tiny coupling sends breakpoints to ±inf: fine
        shutdown_key = intercept / coupling  # x_i = 0 for A >= L_i
        saturate_key = np.where(np.isfinite(cap), (intercept - curvature * cap) / coupling, -np.inf)
    shutdown_order = np.argsort(shutdown_key, kind="stable")
    saturate_order = np.argsort(saturate_key, kind="stable")
    shutdown = shutdown_key[shutdown_order]
    saturate = saturate_key[saturate_order]
    finite_cap = np.where(np.isfinite(cap), cap, 0.0)
    ratio, inverse = intercept / curvature, 1.0 / curvature
    ratio_by_shutdown, ratio_by_saturate = (
        _suffix_sums(ratio, shutdown_order),
        _suffix_sums(ratio, saturate_order),
    )
    inverse_by_shutdown = _suffix_sums(inverse, shutdown_order)
    inverse_by_saturate = _suffix_sums(inverse, saturate_order)
    cap_by_saturate = _suffix_sums(finite_cap, saturate_order)

    def segment(aggregate: np.ndarray):
        """Per aggregate value: (Σ caps of saturated, Σ m/s and Σ 1/s over active agents)."""
        positive = np.searchsorted(shutdown, aggregate, side="right")  # agents with L_i > A
        saturated = np.searchsorted(saturate, aggregate, side="left")  # agents with U_i >= A
        return (
            cap_by_saturate[saturated],
            ratio_by_shutdown[positive] - ratio_by_saturate[saturated],
            inverse_by_shutdown[positive] - inverse_by_saturate[saturated],
        )

    def g(aggregate: np.ndarray) -> np.ndarray:
        capped, ratio_sum, inverse_sum = segment(aggregate)
        return aggregate - weight * (capped + ratio_sum - coupling * aggregate * inverse_sum)

    candidates = np.concatenate(([0.0], shutdown, saturate))
    candidates = np.unique(candidates[np.isfinite(candidates) & (candidates >= 0.0)])
    values = g(candidates)
    nonnegative = np.flatnonzero(values >= 0.0)
    first = int(nonnegative[0]) if nonnegative.size else len(values)
    if first == 0:
        return 0.0
    if first < len(values) and values[first] == 0.0:
        return float(candidates[first])
    left = candidates[first - 1]
    right = candidates[first] if first < len(values) else left + 1.0
    capped, ratio_sum, inverse_sum = (part[0] for part in segment(np.array([0.5 * (left + right)])))
    return float(weight * (capped + ratio_sum) / (1.0 + weight * coupling * inverse_sum))
