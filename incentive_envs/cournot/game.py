"""Cournot oligopoly with a per-firm emission tax (paper Example 3.1 and §7; SPEC G1).

``n`` firms choose outputs ``a^i ∈ [0, a_max]``; the price is ``p(Q) = p0 − γQ`` with
``Q = Σ_j a^j``. Firm ``i`` pays production cost ``c^i a^i + (k/2)(a^i)^2`` and a tax
``π^i a^i``; its reward (profit net of tax) is

    u^i(a, π) = a^i p(Q) − c^i a^i − (k/2)(a^i)^2 − π^i a^i,

so the pseudo-gradient is ``v^i = p0 − γQ − γa^i − c^i − k a^i − π^i`` and

    ∂v/∂a = −γ(I + 11^T) − kI,      ∂v/∂π = −I.

Social welfare (taxes are transfers; paper §7 with the curvature term added):

    W(a) = p0 Q − γQ²/2 − Σ_i (c^i a^i + (k/2)(a^i)^2) − τ Σ_i d^i a^i,

and the planner's cost is ``f = −W``. Both the equilibrium (a linear complementarity
problem) and the first-best ``W* = max_{a ∈ [0, a_max]^n} W(a)`` are solved exactly by
reducing them to a scalar, strictly monotone, piecewise-linear equation in ``Q`` solved
in closed form on its active set (:func:`incentive_envs.aggregate.solve_aggregate`).
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

PAPER_EMISSION_NOISE_STD = 0.5
"""Standard deviation of the white noise ε in ``d^i = 10 − exp(c^i) + ε^i``.

The paper does not state it; 0.5 keeps every ``d^i`` positive (the smallest mean rate is
``10 − e² ≈ 2.6``) while breaking the exact ordering of emission rates.
"""


@dataclass(frozen=True, eq=False)
class CournotParams:
    """Parameters of the emission-tax Cournot game.

    Parameters
    ----------
    marginal_cost : ndarray, shape (n,)
        ``c^i >= 0``, each firm's constant marginal production cost.
    emission_rate : ndarray, shape (n,)
        ``d^i >= 0``, emissions per unit of output.
    p0 : float
        Inverse-demand intercept, ``> 0``.
    gamma : float
        Inverse-demand slope ``γ > 0``.
    tau : float
        Social damage per unit of emission ``τ >= 0``.
    k : float
        Production-cost curvature ``k >= 0`` (paper: 0). ``k > 0`` makes the social
        optimum unique and the upper level strongly convex.
    max_output : float or None
        Output cap ``a_max > 0``; ``None`` means ``p0 / γ`` (the output at which the price
        reaches zero, never exceeded by a profit-seeking firm).
    tax_bounds : (float, float)
        Bounds of every firm's tax ``π^i``; negative taxes are subsidies (needed to
        implement the first best when firms have market power).
    """

    marginal_cost: np.ndarray
    emission_rate: np.ndarray
    p0: float = 100.0
    gamma: float = 1.0
    tau: float = 10.0
    k: float = 0.0
    max_output: float | None = None
    tax_bounds: tuple[float, float] = (-100.0, 100.0)

    def __post_init__(self) -> None:
        cost = as_finite_array(self.marginal_cost, "marginal_cost")
        if cost.ndim != 1 or cost.size == 0:
            raise ValueError(f"marginal_cost must be a non-empty 1-D array, got shape {cost.shape}")
        rate = as_finite_array(self.emission_rate, "emission_rate", cost.shape)
        if np.any(cost < 0):
            raise ValueError(f"marginal_cost must be >= 0, got min {cost.min()!r}")
        if np.any(rate < 0):
            raise ValueError(f"emission_rate must be >= 0, got min {rate.min()!r}")
        for array, field in ((cost, "marginal_cost"), (rate, "emission_rate")):
            object.__setattr__(self, field, frozen(array))
        object.__setattr__(self, "p0", check_scalar(self.p0, "p0", low=0.0, low_inclusive=False))
        object.__setattr__(self, "gamma", check_scalar(self.gamma, "gamma", low=0.0, low_inclusive=False))
        object.__setattr__(self, "tau", check_scalar(self.tau, "tau", low=0.0))
        object.__setattr__(self, "k", check_scalar(self.k, "k", low=0.0))
        if self.max_output is not None:
            object.__setattr__(
                self,
                "max_output",
                check_scalar(self.max_output, "max_output", low=0.0, low_inclusive=False),
            )
        object.__setattr__(self, "tax_bounds", check_bounds_pair(self.tax_bounds, "tax_bounds"))

    @property
    def n(self) -> int:
        """Number of firms."""
        return int(self.marginal_cost.shape[0])

    @property
    def output_cap(self) -> float:
        """``a_max``: ``max_output`` or, if unset, ``p0 / γ``."""
        return self.p0 / self.gamma if self.max_output is None else self.max_output

    @property
    def social_marginal_cost(self) -> np.ndarray:
        """``e^i = c^i + τ d^i``: the marginal social cost of firm ``i``'s output at k = 0."""
        return self.marginal_cost + self.tau * self.emission_rate

    @classmethod
    def paper(
        cls,
        n: int = 100,
        *,
        p0: float = 100.0,
        gamma: float = 1.0,
        tau: float = 10.0,
        k: float = 0.0,
        emission_noise_std: float = PAPER_EMISSION_NOISE_STD,
        seed: int | np.random.Generator = 0,
        max_output: float | None = None,
        tax_bounds: tuple[float, float] | None = None,
    ) -> CournotParams:
        """The instance of the paper's §7: ``c^i`` evenly spaced in [1, 2] and
        ``d^i = 10 − exp(c^i) + ε^i`` with ``ε^i ~ N(0, emission_noise_std²)`` drawn from
        ``seed``. ``tax_bounds`` defaults to ``(−p0, p0)``.
        """
        n = check_positive_int(n, "n")
        p0 = check_scalar(p0, "p0", low=0.0, low_inclusive=False)
        noise_std = check_scalar(emission_noise_std, "emission_noise_std", low=0.0)
        rng = as_generator(seed)
        cost = np.linspace(1.0, 2.0, n)
        rate = 10.0 - np.exp(cost) + noise_std * rng.standard_normal(n)
        if np.any(rate < 0):
            raise ValueError(
                f"emission_noise_std = {emission_noise_std!r} draws a negative emission rate "
                f"({float(rate.min()):.4g}) with this seed; use a smaller emission_noise_std or another seed"
            )
        bounds = (-p0, p0) if tax_bounds is None else tax_bounds
        return cls(cost, rate, p0, gamma, tau, k, max_output, bounds)


class CournotGame(OwnPriceIncentive, IncentiveGame):
    """The model of the emission-tax Cournot game (see the module docstring).

    Strategy: outputs ``a ∈ [0, a_max]^n`` (one coordinate per firm). Incentive: taxes
    ``π ∈ [tax_bounds]^n``. Planner cost: ``f(π, a) = −W(a)``.
    """

    has_best_response = True
    has_payoffs = True

    def __init__(self, params: CournotParams):
        if not isinstance(params, CournotParams):
            raise ValueError(f"params must be CournotParams, got {type(params).__name__}")
        self.params = params
        n = params.n
        self.strategy_set = StrategySet("box", (1,) * n, np.zeros(n), np.full(n, params.output_cap))
        low, high = params.tax_bounds
        self.incentive_set = IncentiveSet(np.full(n, low), np.full(n, high))
        self._social_marginal_cost = frozen(params.social_marginal_cost)
        self._structure = LowRankJacobian(  # uniform rows, stored once
            frozen(np.array([-(params.gamma + params.k)])),
            frozen(np.array([[-params.gamma]])),
            frozen(np.ones((1, 1))),
        )
        check_finite_scale(self, params)

    def __repr__(self) -> str:
        p = self.params
        return f"CournotGame(n={p.n}, p0={p.p0}, gamma={p.gamma}, tau={p.tau}, k={p.k})"

    def price(self, x: np.ndarray) -> float:
        """Market price ``p(Q) = p0 − γ Σ a^j``."""
        return self.params.p0 - self.params.gamma * float(np.add.reduce(x))

    def _rewards(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        p = self.params
        return x * (self.price(x) - p.marginal_cost - 0.5 * p.k * x - theta)

    def _pseudo_gradient(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        # in place: one array allocated per call (large temporaries cost page faults)
        p = self.params
        gradient = np.multiply(x, -(p.gamma + p.k))
        gradient -= p.marginal_cost
        gradient -= theta
        gradient += self.price(x)
        return gradient

    def _jvp_x(self, x: np.ndarray, theta: np.ndarray, tangent: np.ndarray) -> np.ndarray:
        p = self.params
        return -p.gamma * np.sum(tangent) - (p.gamma + p.k) * tangent

    def _vjp_x(self, x: np.ndarray, theta: np.ndarray, cotangent: np.ndarray) -> np.ndarray:
        return self._jvp_x(x, theta, cotangent)  # ∂v/∂a is symmetric

    def _jacobian_x_structure(self, x: np.ndarray, theta: np.ndarray) -> LowRankJacobian:
        """``∂v/∂a = −(γ + k) I − γ 11ᵀ``: diagonal plus rank one."""
        return self._structure

    def _best_response(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """``argmax_{a^i} u^i(a^i, a^{-i})``: ``clip((p0 − c^i − π^i − γQ^{-i})/(2γ + k))``."""
        p = self.params
        others = np.sum(x) - x
        unconstrained = (p.p0 - p.marginal_cost - theta - p.gamma * others) / (2 * p.gamma + p.k)
        return np.clip(unconstrained, 0.0, p.output_cap)

    def _unilateral_rewards(self, x: np.ndarray, theta: np.ndarray, actions: np.ndarray) -> np.ndarray:
        p = self.params
        others = (np.sum(x) - x)[:, None]
        price = p.p0 - p.gamma * (others + actions)
        return actions * (price - p.marginal_cost[:, None] - 0.5 * p.k * actions - theta[:, None])

    def _equilibrium(self, theta: np.ndarray) -> np.ndarray:
        """Exact Nash equilibrium: ``a^i = clip((p0 − c^i − π^i − γQ)/(γ + k), 0, a_max)``
        with ``Q`` the unique root of the aggregate equation (an LCP solved on its active set).
        """
        p = self.params
        intercept = p.p0 - p.marginal_cost - theta
        total = solve_aggregate(intercept, p.gamma, p.gamma + p.k, p.output_cap)
        return np.clip((intercept - p.gamma * total) / (p.gamma + p.k), 0.0, p.output_cap)

    def welfare(self, x: np.ndarray) -> float:
        """Social welfare ``W(a)`` (SPEC G1)."""
        p = self.params
        total = float(np.sum(x))
        production = p.marginal_cost @ x + 0.5 * p.k * (x @ x)
        return p.p0 * total - 0.5 * p.gamma * total**2 - production - p.tau * (p.emission_rate @ x)

    def _social_cost(self, x: np.ndarray, theta: np.ndarray) -> float:
        return -self.welfare(x)

    def _social_cost_grad_x(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        gradient = np.multiply(x, self.params.k)  # −(p(Q) − e − k a), in place
        gradient += self._social_marginal_cost
        gradient -= self.price(x)
        return gradient

    def social_optimum(self) -> SocialOptimum:
        """Exact first best ``max_{a ∈ [0, a_max]^n} W(a)``.

        For ``k > 0`` the optimum is unique: ``a^i = clip((p0 − e^i − γQ)/k, 0, a_max)``
        with ``e^i = c^i + τd^i``. For ``k = 0`` output is allocated to the firms with the
        smallest ``e^i`` first (each up to ``a_max``) until the marginal consumer value
        ``p0 − γQ`` meets the marginal social cost; ``W*`` is unique, the allocation among
        tied firms is not.
        """
        p = self.params
        cap = p.output_cap
        cost = p.social_marginal_cost
        if p.k > 0:
            intercept = p.p0 - cost
            total = solve_aggregate(intercept, p.gamma, p.k, cap)
            x = np.clip((intercept - p.gamma * total) / p.k, 0.0, cap)
        else:
            order = np.argsort(cost, kind="stable")
            sorted_cost = cost[order]
            segment_start = cap * np.arange(p.n)
            # marginal welfare at the end of each firm's capacity segment
            end_slope = p.p0 - p.gamma * (segment_start + cap) - sorted_cost
            falling = np.flatnonzero(end_slope < 0.0)
            if falling.size == 0:
                total = cap * p.n
            else:
                j = int(falling[0])
                total = max(segment_start[j], (p.p0 - sorted_cost[j]) / p.gamma)
            filled = np.clip(total - segment_start, 0.0, cap)
            x = np.empty(p.n)
            x[order] = filled
        return SocialOptimum(-self.welfare(x), x)

    def first_best_incentive(self) -> FirstBestIncentive:
        """The tax ``π^i = τ d^i − γ a^i_so`` that implements the first best ``a_so``.

        It is the Pigouvian tax ``τ d^i`` minus a market-power subsidy ``γ a^i_so``: at
        ``a_so`` every firm's first-order condition then coincides with the planner's. It is
        the unique minimiser of ``f*`` when ``k > 0`` and every firm's social first-order
        condition holds with equality or at capacity (a firm strictly better shut down can
        be taxed anything above its shutdown threshold). Raises ``ValueError`` if the tax
        falls outside ``tax_bounds`` (the first best is then not implementable).
        """
        p = self.params
        optimum = self.social_optimum().strategy
        theta = p.tau * p.emission_rate - p.gamma * optimum
        low, high = p.tax_bounds
        if np.any(theta < low) or np.any(theta > high):
            raise ValueError(
                f"the first-best tax spans [{theta.min():.6g}, {theta.max():.6g}], outside "
                f"tax_bounds {p.tax_bounds}: widen tax_bounds to implement the first best"
            )
        margin = self.price(optimum) - p.social_marginal_cost - p.k * optimum
        strictly_shut = (optimum <= 0.0) & (margin < -1e-9 * max(1.0, p.p0))
        return FirstBestIncentive(theta, bool(p.k > 0 and not strictly_shut.any()))
