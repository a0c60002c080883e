"""Aggregative game with linear prices (social-gradient experiments; SPEC G3).

Agent ``i`` chooses ``x^i ∈ [0, x̄_i]`` to minimise

    J_i(x) + p_i x^i,     J_i(x) = ½ q_i (x^i)² − b_i x^i + x^i (α + β σ(x)),   σ(x) = (1/n) Σ_j x^j,

where ``p_i`` is the planner's linear price. As a reward game ``u^i = −(J_i + p_i x^i)``, so

    v^i = −(q_i x^i − b_i + α + βσ + βx^i/n + p_i),    ∂v/∂x = −diag(q + β/n) − (β/n) 11ᵀ,
    ∂v/∂p = −I.

The planner's social cost adds an externality the agents ignore (prices are transfers):

    Φ(x) = Σ_i J_i(x) + (κ n / 2) σ(x)²,    ∇_i Φ = q_i x^i − b_i + α + (2β + κ) σ.

Why the defaults make everything unique: ``∂v/∂x`` is symmetric with eigenvalues at most
``−min q_i < 0`` (``q_i >= 1``), so the game is a strongly monotone potential game with a
unique equilibrium for every price; ``∇²Φ = diag(q) + ((2β + κ)/n) 11ᵀ`` is positive definite,
so the social optimum is unique; and with ``x^so`` interior the Pigouvian price
``p_i* = ∇_iΦ(x^so) − ∇_iJ_i(x^so) = (β + κ)σ^so − βx_i^so/n`` is the unique optimal price.
Both the equilibrium and the optimum reduce to a scalar equation in ``σ`` solved exactly
(:func:`incentive_envs.aggregate.solve_aggregate`), O(n log n); every product is O(n).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from incentive_envs.aggregate import solve_aggregate
from incentive_envs.core import (
    FirstBestIncentive,
    IncentiveGame,
    IncentiveSet,
    LowRankJacobian,
    OwnPriceIncentive,
    SocialOptimum,
    StrategySet,
    check_finite_scale,
    frozen,
)
from incentive_envs.validation import (
    as_finite_array,
    as_generator,
    check_bounds_pair,
    check_positive_int,
    check_scalar,
)


@dataclass(frozen=True, eq=False)
class AggregativeParams:
    """Parameters of the aggregative game (see the module docstring).

    Parameters
    ----------
    curvature : ndarray, shape (n,)
        ``q_i > 0``.
    benefit : ndarray, shape (n,)
        ``b_i``.
    cap : ndarray, shape (n,)
        ``x̄_i > 0``.
    alpha, beta : float
        Congestion intercept ``α`` and slope ``β >= 0`` of the aggregate.
    kappa : float
        Externality weight ``κ >= 0`` in the social cost.
    price_bounds : (float, float)
        Bounds of every price ``p_i``.
    """

    curvature: np.ndarray
    benefit: np.ndarray
    cap: np.ndarray
    alpha: float = 1.0
    beta: float = 1.0
    kappa: float = 2.0
    price_bounds: tuple[float, float] = (-20.0, 20.0)

    def __post_init__(self) -> None:
        curvature = as_finite_array(self.curvature, "curvature")
        if curvature.ndim != 1 or curvature.size == 0:
            raise ValueError(f"curvature must be a non-empty 1-D array, got shape {curvature.shape}")
        benefit = as_finite_array(self.benefit, "benefit", curvature.shape)
        cap = as_finite_array(self.cap, "cap", curvature.shape)
        if np.any(curvature <= 0):
            raise ValueError(f"curvature must be > 0, got min {curvature.min()!r}")
        if np.any(cap <= 0):
            raise ValueError(f"cap must be > 0, got min {cap.min()!r}")
        for name, array in (("curvature", curvature), ("benefit", benefit), ("cap", cap)):
            object.__setattr__(self, name, frozen(array))
        object.__setattr__(self, "alpha", check_scalar(self.alpha, "alpha"))
        object.__setattr__(self, "beta", check_scalar(self.beta, "beta", low=0.0))
        object.__setattr__(self, "kappa", check_scalar(self.kappa, "kappa", low=0.0))
        object.__setattr__(self, "price_bounds", check_bounds_pair(self.price_bounds, "price_bounds"))

    @property
    def n(self) -> int:
        return int(self.curvature.shape[0])

    @classmethod
    def default(
        cls,
        n: int = 100,
        *,
        seed: int | np.random.Generator = 0,
        alpha: float = 1.0,
        beta: float = 1.0,
        kappa: float = 2.0,
        cap: float = 10.0,
        price_bounds: tuple[float, float] = (-20.0, 20.0),
    ) -> AggregativeParams:
        """SPEC G3: ``q_i ~ U[1, 2]``, ``b_i ~ U[5, 10]`` from ``seed``, ``x̄_i = cap``."""
        n = check_positive_int(n, "n")
        rng = as_generator(seed)
        curvature = rng.uniform(1.0, 2.0, n)
        benefit = rng.uniform(5.0, 10.0, n)
        cap = check_scalar(cap, "cap", low=0.0, low_inclusive=False)
        return cls(curvature, benefit, np.full(n, cap), alpha, beta, kappa, price_bounds)


class AggregativeGame(OwnPriceIncentive, IncentiveGame):
    """The model of the aggregative game; incentives are per-agent linear prices."""

    has_best_response = True
    has_payoffs = True

    def __init__(self, params: AggregativeParams):
        if not isinstance(params, AggregativeParams):
            raise ValueError(f"params must be AggregativeParams, got {type(params).__name__}")
        self.params = params
        n = params.n
        self.strategy_set = StrategySet("box", (1,) * n, np.zeros(n), params.cap)
        low, high = params.price_bounds
        self.incentive_set = IncentiveSet(np.full(n, low), np.full(n, high))
        self._own_slope = frozen(params.curvature + params.beta / n)
        self._structure = LowRankJacobian(
            frozen(-self._own_slope),
            frozen(np.array([[-params.beta / n]])),  # uniform rows, stored once
            frozen(np.ones((1, 1))),
        )
        check_finite_scale(self, params)

    def __repr__(self) -> str:
        p = self.params
        return f"AggregativeGame(n={p.n}, alpha={p.alpha}, beta={p.beta}, kappa={p.kappa})"

    @staticmethod
    def aggregate(x: np.ndarray) -> float:
        """``σ(x)``, the mean action."""
        return float(np.mean(x))

    def costs(self, x: np.ndarray) -> np.ndarray:
        """``J_i(x)`` without prices."""
        p = self.params
        return 0.5 * p.curvature * x**2 - p.benefit * x + x * (p.alpha + p.beta * self.aggregate(x))

    def _rewards(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        return -(self.costs(x) + theta * x)

    def _pseudo_gradient(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        p = self.params
        gradient = np.multiply(x, -self._own_slope)  # in place: one array allocated per call
        gradient += p.benefit
        gradient -= theta
        gradient -= p.alpha + p.beta * self.aggregate(x)
        return gradient

    def _jvp_x(self, x: np.ndarray, theta: np.ndarray, tangent: np.ndarray) -> np.ndarray:
        p = self.params
        return -((p.curvature + p.beta / p.n) * tangent + p.beta * np.mean(tangent))

    def _vjp_x(self, x: np.ndarray, theta: np.ndarray, cotangent: np.ndarray) -> np.ndarray:
        return self._jvp_x(x, theta, cotangent)

    def _jacobian_x_structure(self, x: np.ndarray, theta: np.ndarray) -> LowRankJacobian:
        """``∂v/∂x = −diag(q + β/n) − (β/n) 11ᵀ``: diagonal plus rank one."""
        return self._structure

    def _best_response(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """``argmin_{x^i} J_i + p_i x^i`` given the others: ``x^i`` enters σ with weight 1/n."""
        p = self.params
        others = (np.sum(x) - x) / p.n
        unconstrained = (p.benefit - p.alpha - p.beta * others - theta) / (p.curvature + 2 * p.beta / p.n)
        return np.clip(unconstrained, 0.0, p.cap)

    def _unilateral_rewards(self, x: np.ndarray, theta: np.ndarray, actions: np.ndarray) -> np.ndarray:
        p = self.params
        others = ((np.sum(x) - x) / p.n)[:, None]
        sigma = others + actions / p.n
        cost = 0.5 * p.curvature[:, None] * actions**2 - p.benefit[:, None] * actions
        return -(cost + actions * (p.alpha + p.beta * sigma) + theta[:, None] * actions)

    def _equilibrium(self, theta: np.ndarray) -> np.ndarray:
        """``x^i = clip((b_i − α − p_i − βσ)/(q_i + β/n), 0, x̄_i)`` with σ solved exactly."""
        p = self.params
        intercept = p.benefit - p.alpha - theta
        slope = p.curvature + p.beta / p.n
        if p.beta == 0:
            return np.clip(intercept / slope, 0.0, p.cap)
        sigma = solve_aggregate(intercept, p.beta, slope, p.cap, 1.0 / p.n)
        return np.clip((intercept - p.beta * sigma) / slope, 0.0, p.cap)

    def _social_cost(self, x: np.ndarray, theta: np.ndarray) -> float:
        p = self.params
        return float(np.sum(self.costs(x)) + 0.5 * p.kappa * p.n * self.aggregate(x) ** 2)

    def _social_cost_grad_x(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        p = self.params
        gradient = np.multiply(x, p.curvature)
        gradient -= p.benefit
        gradient += p.alpha + (2 * p.beta + p.kappa) * self.aggregate(x)
        return gradient

    def social_optimum(self) -> SocialOptimum:
        """``x^i = clip((b_i − α − (2β + κ)σ)/q_i, 0, x̄_i)`` with σ solved exactly."""
        p = self.params
        intercept = p.benefit - p.alpha
        coupling = 2 * p.beta + p.kappa
        if coupling == 0:
            x = np.clip(intercept / p.curvature, 0.0, p.cap)
        else:
            sigma = solve_aggregate(intercept, coupling, p.curvature, p.cap, 1.0 / p.n)
            x = np.clip((intercept - coupling * sigma) / p.curvature, 0.0, p.cap)
        return SocialOptimum(self._social_cost(x, np.zeros(p.n)), x)

    def first_best_incentive(self) -> FirstBestIncentive:
        """The Pigouvian price ``p_i* = ∇_iΦ(x^so) − ∇_iJ_i(x^so) = (β + κ)σ^so − βx_i^so/n``.

        At ``x^so`` every agent's first-order condition then coincides with the planner's, so
        ``x*(p*) = x^so``; it is the unique optimal price when ``x^so`` is interior.
        Raises ``ValueError`` if it falls outside ``price_bounds``.
        """
        p = self.params
        optimum = self.social_optimum().strategy
        price = (p.beta + p.kappa) * self.aggregate(optimum) - p.beta * optimum / p.n
        low, high = p.price_bounds
        if np.any(price < low) or np.any(price > high):
            raise ValueError(
                f"the Pigouvian price spans [{price.min():.6g}, {price.max():.6g}], outside price_bounds {p.price_bounds}"
            )
        interior = bool(np.all((optimum > 0) & (optimum < p.cap)))
        return FirstBestIncentive(price, interior)
