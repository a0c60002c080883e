"""A tax economy: a planner sets the marginal rates of a bracketed income tax (SPEC G6).

The model is the labour-choice core of the AI Economist's one-step economy — Zheng, S.,
Trott, A., Srinivasa, S., Parkes, D. C. & Socher, R. (2022), "The AI Economist: Taxation
policy design via two-level deep multiagent reinforcement learning", Science Advances 8(18),
eabk2607 — the tax economy of Yang, J., Wang, E., Trivedi, R., Zhao, T. & Zha, H. (2021),
"Adaptive incentive design with multi-agent meta-gradient reinforcement learning"
(arXiv:2112.10859) — solved exactly.

Model
-----
``n`` workers with skills ``s_i > 0`` choose labour ``l_i ∈ [0, L̄]``; pre-tax income is
``z_i = s_i l_i``. The planner's incentive is the vector ``θ ∈ [0, 1]^B`` of marginal rates of
a bracketed schedule with cutoffs ``0 = c_0 < c_1 < … < c_{B−1}`` (bracket ``b`` is the
half-open interval ``[c_b, c_{b+1})``, ``c_B = ∞``, width ``w_b = c_{b+1} − c_b``):

    τ_θ(z) = Σ_b θ_b m_b(z),        m_b(z) = clip(z − c_b, 0, w_b)   (income in bracket b).

All revenue is returned as an equal lump sum ``T(l) = (1/n) Σ_j τ_θ(z_j)`` (the budget
identity), so worker ``i`` ends the period with coin

    c_i = e + z_i − τ_θ(z_i) + T,

where ``e > 0`` is a small endowment (see "Changes" below), and its utility is isoelastic in
coin and linear in labour (Zheng et al. 2022, "isoelastic_coin_minus_labor"):

    u_i = φ(c_i) − κ l_i,      φ(c) = (c^{1−η} − 1)/(1 − η),      η = 0.23, κ = 0.21.

The planner maximises equality × productivity, with equality ``1 − Gini(c)·n/(n−1)`` and
productivity ``Σ_i c_i``; its cost is ``f = −equality × productivity``. Writing ``r_i`` for the
rank of ``c_i`` (1 = poorest) this product is a rank-weighted sum of coin,

    equality × productivity = Σ_i ω_i c_i,    ω_i = 2(n − r_i)/(n − 1),   mean(ω) = 1,
                            = (2/(n − 1)) Σ_{i<j} min(c_i, c_j),

a continuous, concave, piecewise-linear function of coin (Sen's welfare index ``μ(1 − G)``
times ``n``, up to the ``n/(n−1)`` normalisation): its gradient is ``ω`` wherever coins are
distinct; at ties the stable sort order ranks the lower index first, which selects an element
of the superdifferential, so ties are handled consistently.

Price-taking workers and the pseudo-gradient
--------------------------------------------
Workers are price-takers in the lump sum: each treats ``T`` as given (its own tax returns to
it only as a ``1/n`` share), and ``T`` is then set by the budget identity. The pseudo-gradient
is the marginal utility of labour at fixed ``T``,

    v_i = φ'(c_i) s_i (1 − θ_{k_i}) − κ,        k_i = the bracket of z_i,

(the realised reward ``u_i(l)`` also moves with ``T(l)``; the difference,
``φ'(c_i) θ_{k_i} s_i / n``, vanishes as ``n`` grows). ``T(l)`` couples the workers, so
``∂v/∂l`` is diagonal plus rank one,

    ∂v/∂l = diag(a ⊙ s ⊙ (1 − θ_k)) + a bᵀ,   a_i = φ''(c_i) s_i (1 − θ_{k_i}),  b_j = s_j θ_{k_j}/n,

and ``∂v_i/∂θ_b = a_i (M_b − m_b(z_i)) − φ'(c_i) s_i [k_i = b]`` with ``M_b = mean_j m_b(z_j)``.

Kinks
-----
``τ_θ`` is piecewise linear, so ``v`` jumps where an income crosses a cutoff. Every
derivative here is that of the smooth piece the income lies on (brackets are half-open: an
income exactly at ``c_b`` uses ``θ_b``, the right derivative). A worker whose income sits at a
cutoff with ``v`` positive just below and negative just above (a concave kink, ``θ_{b−1} <
θ_b``) *bunches*: like a coordinate at a bound of its box, its income is pinned to the cutoff,
so locally its labour responds neither to ``θ`` nor to ``T`` — while its coin still does,
through the rates below the cutoff and ``T``. At such a kink the pseudo-gradient is the
element of the superdifferential nearest 0 (0 for a buncher), so a bunched equilibrium is a
fixed point of gradient play, and :meth:`TaxEconomyGame._pinned_coordinates` reports the
bunchers: the generic projected map (:func:`agents.fixed_point.free_coordinates`) then
differentiates the equilibrium conditions on the free workers only, which makes the
implicit hypergradients of the planners exact at the equilibrium on every smooth piece of
``f*``.

Exact best response
-------------------
On bracket ``b`` coin is affine in income, ``c = A_b + T + (1 − θ_b) z`` with
``A_b = e − τ_θ(c_b) + θ_b c_b``, so utility is concave there with stationary point

    c* = (s (1 − θ_b)/κ)^{1/η},   z* = (c* − A_b − T)/(1 − θ_b).

Utility is concave across brackets when the rates do not fall, but with arbitrary rates it
need not be: the best response takes the best of the per-bracket maxima (``z*`` clipped to the
bracket ∩ ``[0, s L̄]``, which covers the kinks and the box ends), ties going to the lower
income. O(nB) per call.

Exact equilibrium: a fixed point in the lump sum
------------------------------------------------
Given ``T``, every worker's best response ``z_i(T)`` is determined; the equilibrium lump sum
solves ``g(T) = T − R(T) = 0`` with ``R(T) = (1/n) Σ_i τ_θ(z_i(T))``. Uniqueness: for
``z' > z`` the utility gain ``φ(e + T + N(z')) − φ(e + T + N(z)) − κ(z' − z)/s`` (``N(z) = z −
τ_θ(z)``, non-decreasing) is non-increasing in ``T`` because ``φ'`` decreases, so utility has
decreasing differences in ``(z, T)`` and by Topkis's theorem every selection of the best
response is non-increasing in ``T``; since ``τ_θ`` is non-decreasing, ``R`` is non-increasing
and ``g`` strictly increasing: at most one root, and it lies in ``[0, R(0)]``. Moreover each
``z_i(T)`` is piecewise *linear* in ``T`` (slope ``−1/(1 − θ_k)`` inside a bracket, 0 when
pinned), so ``g`` is piecewise linear: a safeguarded Newton iteration stops when a step lands
on the same regime (brackets and pinned/free status of every worker) it started from, where
the root of the linear piece is exact. At n = 1000 this takes a median of 6 evaluations of
the best responses for rising rates and 11 for arbitrary ones (about 50 when the root sits on
a jump, below).

When rates never fall (utility concave) the best response is unique and continuous in ``T``:
the equilibrium exists and is unique. When a rate falls at a cutoff, a worker may switch
between two local optima, ``R`` jumps down there, and if the root lies in such a jump no
pure-strategy equilibrium exists in a finite economy: the solver then returns the profile just
above the jump (the indifferent workers take the lower income), an ε-equilibrium whose budget
residual ``T − R = O(Δτ/n)`` is reported in :attr:`EquilibriumState.budget_residual`.

Changes from the issue, and the instance
----------------------------------------
* Coin includes an endowment ``e = 1`` coin (= 1,000 USD). Without it coin is 0 for a worker
  who does not work under zero transfers, where ``φ'`` is infinite (the learners' initial
  profile at ``l = 0`` would get infinite feedback). With ``e = 1``, ``φ(e) = 0``.
* Income scale: 1 coin = 1,000 USD (the AI Economist's ``usd_scaling = 1000``), so the 2018 US
  federal single-filer cutoffs 0; 9,525; 38,700; 82,500; 157,500; 200,000; 500,000 USD become
  0; 9.525; 38.7; 82.5; 157.5; 200; 500 coin.
* Labour box ``[0, 100]`` (the AI Economist's 100 hours). Skills are Pareto with shape 1.5 and
  scale (minimum) 0.3 coin per hour, drawn from a seed. A free-market worker targets coin
  ``(s/κ)^{1/η}`` when the box allows it, so workers above ``s ≈ 0.52`` (≈ 45%) work the full
  100 hours and earn ``100 s``: incomes then have a Pareto tail of shape 1.5, the value
  Diamond, P. & Saez, E. (2011), "The case for a progressive tax", Journal of Economic
  Perspectives 25(4), use for US top incomes, and the free-market incomes of 1,000 workers
  fill all seven brackets. Interior workers are very elastic (compensated elasticity
  ``1/η ≈ 4.3``); capped ones are not, which is what makes the planner's problem non-trivial.

Baselines and ground truth
--------------------------
:func:`free_market_rates`, :func:`us_federal_rates` and :func:`saez_rates` are the baselines;
:func:`optimal_schedule` is the documented global search for the best schedule and
:func:`pareto_frontier` traces equality against productivity; :meth:`TaxEconomyGame.social_optimum`
returns the optimum found.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import scipy.optimize
from scipy.stats import qmc

from incentive_envs.core import (
    IncentiveGame,
    IncentiveSet,
    LowRankJacobian,
    SocialOptimum,
    StrategySet,
    frozen,
)
from incentive_envs.env import MAX_AGENTS
from incentive_envs.validation import (
    as_finite_array,
    as_generator,
    check_int,
    check_positive_int,
    check_scalar,
)

US_FEDERAL_2018_CUTOFFS_USD = (0.0, 9_525.0, 38_700.0, 82_500.0, 157_500.0, 200_000.0, 500_000.0)
"""Lower ends of the seven 2018 US federal brackets for single filers, in USD."""

US_FEDERAL_2018_RATES = (0.10, 0.12, 0.22, 0.24, 0.32, 0.35, 0.37)
"""The 2018 US federal marginal rates for single filers, bracket by bracket."""

COIN_PER_USD = 1e-3
"""The default income scale: 1 coin = 1,000 USD (the AI Economist's ``usd_scaling``)."""

ISOELASTIC_ETA = 0.23
"""``η`` of the isoelastic utility of coin (Zheng et al. 2022)."""

LABOUR_COST = 0.21
"""``κ``, the disutility per unit of labour (Zheng et al. 2022)."""

MAX_BRACKETS = 64
"""Largest number of brackets accepted (arrays of shape ``(n, B)`` are allocated)."""
MAX_COIN = 1e30
"""Largest coin an instance may produce (observations are float32, whose largest value is 3.4e38)."""

NEWTON_ITERATIONS = 200
"""Iteration cap of the lump-sum root finder (module docstring: it needs 6–11 in practice)."""


@dataclass(frozen=True, eq=False)
class TaxEconomyParams:
    """Parameters of the tax economy (see the module docstring).

    Parameters
    ----------
    skill : ndarray, shape (n,)
        ``s_i > 0``: income per unit of labour; ``n >= 2`` (equality needs two workers).
    cutoffs : ndarray, shape (B,)
        Lower ends of the brackets in coin: ``0 = c_0 < c_1 < … < c_{B−1}``, ``B <= 64``.
    eta : float
        ``η ∈ (0, 1)`` of the isoelastic utility of coin.
    labour_cost : float
        ``κ > 0``, disutility per unit of labour.
    max_labour : float
        ``L̄ > 0``, the top of every worker's labour box.
    endowment : float
        ``e > 0``, coin every worker holds before earning (keeps ``φ'`` finite at zero labour).
    """

    skill: np.ndarray
    cutoffs: np.ndarray
    eta: float = ISOELASTIC_ETA
    labour_cost: float = LABOUR_COST
    max_labour: float = 100.0
    endowment: float = 1.0

    def __post_init__(self) -> None:
        skill = as_finite_array(self.skill, "skill")
        if skill.ndim != 1 or skill.size < 2:
            raise ValueError(f"skill must be a 1-D array of at least 2 workers, got shape {skill.shape}")
        if np.any(skill <= 0):
            raise ValueError(f"skill must be > 0, got min {skill.min()!r}")
        cutoffs = as_finite_array(self.cutoffs, "cutoffs")
        if cutoffs.ndim != 1 or not 1 <= cutoffs.size <= MAX_BRACKETS:
            raise ValueError(
                f"cutoffs must be a 1-D array of 1 to {MAX_BRACKETS} entries, got {cutoffs.shape}"
            )
        if cutoffs[0] != 0.0 or np.any(np.diff(cutoffs) <= 0):
            raise ValueError(f"cutoffs must start at 0 and strictly increase, got {cutoffs.tolist()!r}")
        object.__setattr__(self, "skill", frozen(skill))
        object.__setattr__(self, "cutoffs", frozen(cutoffs))
        eta = check_scalar(self.eta, "eta", low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
        object.__setattr__(self, "eta", eta)
        for name in ("labour_cost", "max_labour", "endowment"):
            object.__setattr__(
                self, name, check_scalar(getattr(self, name), name, low=0.0, low_inclusive=False)
            )
        top_coin = float(skill.max()) * self.max_labour + self.endowment
        if not top_coin <= MAX_COIN:
            raise ValueError(
                f"the largest coin, max(skill) × max_labour + endowment = {top_coin!r}, must be at most "
                f"{MAX_COIN:g} (observations are float32); got max(skill) = {float(skill.max())!r}, "
                f"max_labour = {self.max_labour!r}, endowment = {self.endowment!r}"
            )

    @property
    def n(self) -> int:
        """Number of workers."""
        return int(self.skill.shape[0])

    @property
    def n_brackets(self) -> int:
        """Number of brackets ``B`` (the dimension of ``θ``)."""
        return int(self.cutoffs.shape[0])

    @property
    def widths(self) -> np.ndarray:
        """Bracket widths ``w_b = c_{b+1} − c_b`` (the top one is ``inf``)."""
        return np.append(np.diff(self.cutoffs), np.inf)

    @classmethod
    def pareto(
        cls,
        n: int = 1000,
        *,
        shape: float = 1.5,
        scale: float = 0.3,
        seed: int | np.random.Generator = 0,
        coin_per_usd: float = COIN_PER_USD,
        eta: float = ISOELASTIC_ETA,
        labour_cost: float = LABOUR_COST,
        max_labour: float = 100.0,
        endowment: float = 1.0,
    ) -> TaxEconomyParams:
        """The default instance: ``s_i = scale (1 + L_i)`` with ``L_i ~ Lomax(shape)`` drawn by
        ``Generator.pareto`` from ``seed`` — Pareto skills of the given shape with minimum
        ``scale`` — and the 2018 US federal cutoffs times ``coin_per_usd``.
        """
        n = check_positive_int(n, "n", MAX_AGENTS)
        if n < 2:
            raise ValueError(f"n must be at least 2 (equality needs two workers), got {n!r}")
        shape = check_scalar(shape, "shape", low=0.0, low_inclusive=False)
        scale = check_scalar(scale, "scale", low=0.0, low_inclusive=False)
        coin_per_usd = check_scalar(coin_per_usd, "coin_per_usd", low=0.0, low_inclusive=False)
        rng = as_generator(seed)
        with np.errstate(over="ignore"):
            skill = scale * (1.0 + rng.pareto(shape, n))
            cutoffs = coin_per_usd * np.array(US_FEDERAL_2018_CUTOFFS_USD)
        if not np.all(np.isfinite(skill)):
            raise ValueError(
                f"shape = {shape!r} and scale = {scale!r} (the env's skill_shape and skill_scale) give "
                "skills that overflow float64"
            )
        if not np.all(np.isfinite(cutoffs)):
            raise ValueError(f"coin_per_usd = {coin_per_usd!r} gives bracket cutoffs that overflow float64")
        return cls(skill, cutoffs, eta, labour_cost, max_labour, endowment)


# -- the schedule and the planner's objective: plain functions of arrays ----------------------
def bracket_index(income: np.ndarray, cutoffs: np.ndarray) -> np.ndarray:
    """``k`` with ``c_k <= z < c_{k+1}`` (half-open brackets; incomes below 0 map to 0), for
    incomes of any shape: one comparison pass per cutoff, several times faster than a binary
    search for the handful of brackets of a tax schedule."""
    k = np.zeros(np.shape(income), dtype=np.intp)
    for cutoff in cutoffs[1:]:
        k += income >= cutoff
    return k


def tax_at_cutoffs(rates: np.ndarray, cutoffs: np.ndarray) -> np.ndarray:
    """``τ_θ(c_b)`` for every cutoff: the tax due on an income exactly at each cutoff (rates of
    shape ``(..., B)``, one schedule per leading index)."""
    due = np.cumsum(rates[..., :-1] * np.diff(cutoffs), axis=-1)
    return np.concatenate((np.zeros((*rates.shape[:-1], 1)), due), axis=-1)


def tax_liability(income: np.ndarray, rates: np.ndarray, cutoffs: np.ndarray) -> np.ndarray:
    """``τ_θ(z) = Σ_b θ_b clip(z − c_b, 0, w_b)``, in O(nB)."""
    return _tax_and_bracket(income, rates, cutoffs)[0]


def _tax_and_bracket(income: np.ndarray, rates: np.ndarray, cutoffs: np.ndarray):
    """``(τ_θ(z), k)``: on bracket ``k`` the tax is affine, ``τ_θ(c_k) − θ_k c_k + θ_k z``."""
    k = bracket_index(income, cutoffs)
    intercept = tax_at_cutoffs(rates, cutoffs) - rates * cutoffs
    return intercept.take(k) + rates.take(k) * income, k


def bracket_incomes(income: np.ndarray, cutoffs: np.ndarray) -> np.ndarray:
    """``m_b(z) = clip(z − c_b, 0, w_b)``, shape ``(n, B)``: how much of each income falls in
    each bracket (``τ_θ(z) = m(z) @ θ``)."""
    widths = np.append(np.diff(cutoffs), np.inf)
    return np.clip(income[:, None] - cutoffs, 0.0, widths)


def rank_weights(coin: np.ndarray) -> np.ndarray:
    """``ω_i = 2(n − r_i)/(n − 1)`` with ``r_i`` the rank of ``c_i`` (1 = poorest, ties by
    index): the gradient of equality × productivity with respect to coin (mean 1, in [0, 2])."""
    n = coin.shape[0]
    rank = np.empty(n)
    rank[np.argsort(coin, kind="stable")] = np.arange(1, n + 1)
    return 2.0 * (n - rank) / (n - 1)


def gini(coin: np.ndarray) -> float:
    """The Gini coefficient ``Σ_{i,j} |c_i − c_j| / (2 n Σ_i c_i)`` in O(n log n)."""
    n = coin.shape[0]
    ordered = np.sort(coin)
    return float((2.0 * np.arange(1, n + 1) - n - 1) @ ordered / (n * ordered.sum()))


def equality(coin: np.ndarray) -> float:
    """``1 − Gini · n/(n − 1)``, in [0, 1]: 1 for equal coin, 0 when one worker holds it all
    (Zheng et al. 2022's equality, normalised for ``n`` workers)."""
    n = coin.shape[0]
    return 1.0 - gini(coin) * n / (n - 1)


def productivity(coin: np.ndarray) -> float:
    """``Σ_i c_i``, total coin."""
    return float(np.sum(coin))


def equality_times_productivity(coin: np.ndarray) -> float:
    """``equality × productivity = Σ_i ω_i c_i`` (see :func:`rank_weights`), in O(n log n)."""
    return float(rank_weights(coin) @ coin)


# -- the model ---------------------------------------------------------------------------------
KINK_TOLERANCE = 1e-9
"""Relative distance (to ``max(1, c_b)``) within which an income counts as sitting at the
cutoff ``c_b``: labour ``c_b/s`` recomputed as income ``s · (c_b/s)`` misses ``c_b`` by a few
ulps, and a buncher must still be recognised."""


class EquilibriumState(NamedTuple):
    """The exact price-taking equilibrium of one schedule.

    Attributes
    ----------
    labour, income, coin : ndarray, shape (n,)
        ``l*``, ``z* = s l*`` and the realised coin ``e + z − τ(z) + T(l*)``.
    lump_sum : float
        ``T*``, the lump sum every worker best-responds to.
    bracket : ndarray of int, shape (n,)
        The bracket of each income (half-open brackets).
    free : ndarray of bool, shape (n,)
        Workers at an interior stationary point (``v_i = 0``); the others are pinned at a
        cutoff (bunching) or at an end of the labour box.
    budget_residual : float
        ``T* − (1/n) Σ τ(z*)``: 0 up to rounding whenever a pure equilibrium exists (always when
        the rates do not fall); ``O(Δτ/n)`` at the jump of a worker indifferent between two
        incomes (see the module docstring).
    """

    labour: np.ndarray
    income: np.ndarray
    coin: np.ndarray
    lump_sum: float
    bracket: np.ndarray
    free: np.ndarray
    budget_residual: float


class _Local(NamedTuple):
    """Per-worker quantities at a profile ``l`` (shared by every derivative)."""

    income: np.ndarray
    bracket: np.ndarray
    net_rate: np.ndarray  # 1 − θ_k
    coin: np.ndarray
    marginal: np.ndarray  # φ'(c)


class _Response(NamedTuple):
    """Best responses of ``P`` schedules to one lump sum each, with the regime that makes
    ``R(T)`` piecewise linear (arrays ``(P, n)``)."""

    income: np.ndarray
    free: np.ndarray
    bracket: np.ndarray


class TaxEconomyGame(IncentiveGame):
    """The model of the tax economy (see the module docstring).

    Strategy: labour ``l ∈ [0, L̄]^n`` (one coordinate per worker). Incentive: marginal rates
    ``θ ∈ [0, 1]^B``. Planner cost: ``f(θ, l) = −equality × productivity`` of coin. The
    reference optimum (:meth:`social_optimum`) is the second best over schedules.

    Beyond the protocol: :meth:`equilibrium_state` (the equilibrium with its lump sum and
    free/pinned structure), :meth:`best_response_to_lump_sum`, :meth:`lump_sum`,
    :meth:`coin` and :meth:`optimum` (the cached search of :func:`optimal_schedule`).
    """

    has_best_response = True
    has_payoffs = True

    def __init__(self, params: TaxEconomyParams):
        if not isinstance(params, TaxEconomyParams):
            raise ValueError(f"params must be TaxEconomyParams, got {type(params).__name__}")
        self.params = params
        n, brackets = params.n, params.n_brackets
        self.strategy_set = StrategySet("box", (1,) * n, np.zeros(n), np.full(n, params.max_labour))
        self.incentive_set = IncentiveSet(np.zeros(brackets), np.ones(brackets))
        # per bracket k: an income at most ``_near_lower[k]`` sits at c_k (k >= 1), one at least
        # ``_near_upper[k]`` at c_{k+1} (kink detection in two comparisons per worker)
        slack = KINK_TOLERANCE * np.maximum(1.0, params.cutoffs)
        self._near_lower = np.concatenate(([-np.inf], params.cutoffs[1:] + slack[1:]))
        self._near_upper = np.append(params.cutoffs[1:] - slack[1:], np.inf)
        self._optimum: OptimalSchedule | None = None

    def __repr__(self) -> str:
        p = self.params
        return (
            f"TaxEconomyGame(n={p.n}, brackets={p.n_brackets}, eta={p.eta}, "
            f"labour_cost={p.labour_cost}, max_labour={p.max_labour})"
        )

    # -- coin and utility ----------------------------------------------------------------
    def _utility_of_coin(self, coin: np.ndarray) -> np.ndarray:
        """``φ(c) = (c^{1−η} − 1)/(1 − η)``."""
        eta = self.params.eta
        return (coin ** (1.0 - eta) - 1.0) / (1.0 - eta)

    def lump_sum(self, x, theta) -> float:
        """``T(l) = (1/n) Σ_j τ_θ(s_j l_j)``: the revenue of the profile, returned equally."""
        return self._lump_sum(*self._checked(x, theta))

    def _lump_sum(self, x: np.ndarray, theta: np.ndarray) -> float:
        return float(np.mean(tax_liability(self.params.skill * x, theta, self.params.cutoffs)))

    def coin(self, x, theta) -> np.ndarray:
        """Realised coin ``c_i = e + z_i − τ_θ(z_i) + T(l)``."""
        return self._coin(*self._checked(x, theta))

    def _coin(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        income = self.params.skill * x
        tax = tax_liability(income, theta, self.params.cutoffs)
        return self.params.endowment + income - tax + tax.mean()

    def _local(self, x: np.ndarray, theta: np.ndarray) -> _Local:
        p = self.params
        income = p.skill * x
        tax, k = _tax_and_bracket(income, theta, p.cutoffs)
        coin = p.endowment + income - tax + tax.mean()
        return _Local(income, k, 1.0 - theta.take(k), coin, coin ** (-p.eta))

    def _curvature(self, local: _Local) -> np.ndarray:
        """``φ''(c) = −η φ'(c)/c``."""
        return -self.params.eta * local.marginal / local.coin

    def _kinks(self, local: _Local):
        """``(workers, j)``: the workers whose income sits at a positive cutoff (within
        :data:`KINK_TOLERANCE`) and the index ``j >= 1`` of that cutoff; ``None`` if there are none."""
        k = local.bracket
        near_lower = local.income <= self._near_lower.take(k)
        near = near_lower | (local.income >= self._near_upper.take(k))
        if not near.any():
            return None
        workers = np.flatnonzero(near)
        return workers, np.where(near_lower[workers], k[workers], k[workers] + 1)

    def _one_sided_gradients(self, local: _Local, theta: np.ndarray, workers, j):
        """``(v just below c_j, v just above c_j)`` of ``workers`` at a cutoff (coin is continuous)."""
        gain = local.marginal[workers] * self.params.skill[workers]
        kappa = self.params.labour_cost
        return gain * (1.0 - theta[j - 1]) - kappa, gain * (1.0 - theta[j]) - kappa

    # -- the agents' side -----------------------------------------------------------------
    def _rewards(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """``u_i = φ(c_i) − κ l_i`` with the realised coin (lump sum of the profile played)."""
        return self._utility_of_coin(self._coin(x, theta)) - self.params.labour_cost * x

    def _pseudo_gradient(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """``v_i = φ'(c_i) s_i (1 − θ_{k_i}) − κ``: marginal utility of labour at fixed ``T``.

        At a cutoff ``c_j`` utility has a kink. Where it is concave (``θ_{j−1} <= θ_j``) ``v`` is
        the element of the superdifferential ``[v⁺, v⁻]`` nearest 0 (the one-sided derivatives
        above and below): 0 for a worker bunching there, so a bunched equilibrium is a fixed
        point of gradient play. Elsewhere brackets are half-open (``v = v⁺``).
        """
        p = self.params
        local = self._local(x, theta)
        v = local.marginal * p.skill * local.net_rate - p.labour_cost
        kinks = self._kinks(local)
        if kinks is not None:
            workers, j = kinks
            below, above = self._one_sided_gradients(local, theta, workers, j)
            v[workers] = np.where(theta[j - 1] <= theta[j], np.clip(0.0, above, below), above)
        return v

    def _pinned_coordinates(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray | None:
        """Workers bunching at a cutoff: income at ``c_j`` with ``v⁻ > 0 > v⁺`` (a concave kink
        whose superdifferential contains 0 in its interior). Their labour does not move under a
        gradient step nor under small changes of ``θ``. Also workers whose marginal rate is 1:
        ``v = −κ`` does not depend on labour (a zero row of ``∂v/∂l``), they have no stationary
        point on their bracket and drift to the cutoff below, so the linearisation holds their
        labour fixed as well (``None`` when there are none)."""
        local = self._local(x, theta)
        confiscated = local.net_rate == 0.0
        kinks = self._kinks(local)
        if kinks is not None:
            workers, j = kinks
            below, above = self._one_sided_gradients(local, theta, workers, j)
            bunching = (below > 0.0) & (above < 0.0)
            confiscated[workers[bunching]] = True
        return confiscated if confiscated.any() else None

    # -- Jacobian products -----------------------------------------------------------------
    def _jacobian_x_structure(self, x: np.ndarray, theta: np.ndarray) -> LowRankJacobian:
        """``∂v/∂l = diag(a ⊙ s ⊙ (1 − θ_k)) + a bᵀ`` with ``a = φ''(c) s (1 − θ_k)`` and
        ``b = s θ_k / n`` (the lump sum's coupling), on the smooth piece of every income."""
        local = self._local(x, theta)
        s = self.params.skill
        left = self._curvature(local) * s * local.net_rate
        right = s * theta.take(local.bracket) / s.shape[0]
        return LowRankJacobian(left * s * local.net_rate, left[:, None], right[:, None])

    def _jvp_x(self, x: np.ndarray, theta: np.ndarray, tangent: np.ndarray) -> np.ndarray:
        structure = self._jacobian_x_structure(x, theta)
        return structure.diagonal * tangent + structure.left[:, 0] * (structure.right[:, 0] @ tangent)

    def _vjp_x(self, x: np.ndarray, theta: np.ndarray, cotangent: np.ndarray) -> np.ndarray:
        structure = self._jacobian_x_structure(x, theta)
        return structure.diagonal * cotangent + structure.right[:, 0] * (structure.left[:, 0] @ cotangent)

    def _theta_factors(self, x: np.ndarray, theta: np.ndarray):
        """``(a, m, M, own, k)`` with ``∂v_i/∂θ_b = a_i (M_b − m_ib) − own_i [k_i = b]``."""
        local = self._local(x, theta)
        s = self.params.skill
        shares = bracket_incomes(local.income, self.params.cutoffs)
        a = self._curvature(local) * s * local.net_rate
        return a, shares, shares.mean(axis=0), local.marginal * s, local.bracket

    def _jvp_theta(self, x: np.ndarray, theta: np.ndarray, tangent: np.ndarray) -> np.ndarray:
        a, shares, mean_shares, own, k = self._theta_factors(x, theta)
        return a * (mean_shares @ tangent - shares @ tangent) - own * tangent[k]

    def _vjp_theta(self, x: np.ndarray, theta: np.ndarray, cotangent: np.ndarray) -> np.ndarray:
        a, shares, mean_shares, own, k = self._theta_factors(x, theta)
        weighted = cotangent * a
        own_part = np.bincount(k, weights=cotangent * own, minlength=theta.shape[0])
        return weighted.sum() * mean_shares - weighted @ shares - own_part

    # -- best responses ---------------------------------------------------------------------
    def _respond(self, plan: _Plan, lump_sums: np.ndarray) -> _Response:
        """Every worker's best income under each of ``P`` schedules to its lump sum
        ``lump_sums[p]`` (module docstring, "Exact best response"); O(PnB)."""
        p = self.params
        transfer = lump_sums[:, None, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            stationary = np.where(plan.open, (plan.target - plan.intercept - transfer) / plan.net, -np.inf)
        candidate = np.clip(stationary, plan.low, plan.high)
        coin = plan.intercept + transfer + plan.net * candidate
        utility = self._utility_of_coin(coin) - p.labour_cost * candidate / p.skill[:, None]
        best = np.argmax(np.where(plan.valid, utility, -np.inf), axis=2)
        flat = best + _row_offsets(best.size, p.n_brackets).reshape(best.shape)  # into (P·n, B) rows
        chosen, income = stationary.take(flat), candidate.take(flat)
        flat_box = flat[0] if best.shape[0] == 1 else flat % (p.n * p.n_brackets)  # into (n, B)
        free = (chosen > plan.low.take(flat_box)) & (chosen < plan.high.take(flat_box))
        return _Response(income, free, best)

    def best_response_to_lump_sum(self, theta, lump_sum) -> np.ndarray:
        """Every worker's exact best labour to the rates ``theta`` and a given ``lump_sum >= 0``."""
        theta = self.validate_incentive(theta)
        lump_sum = check_scalar(lump_sum, "lump_sum", low=0.0)
        return self._labour(self._respond(_plan(self.params, theta[None]), np.array([lump_sum])).income[0])

    def _labour(self, income: np.ndarray) -> np.ndarray:
        """``z / s``, exactly ``L̄`` for incomes at the top of the box (no rounding past it)."""
        p = self.params
        return np.where(income >= p.skill * p.max_labour, p.max_labour, income / p.skill)

    def _best_response(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Every worker's exact best labour to the lump sum ``T(l)`` of the profile ``x``
        (price-taking: the worker's own ``1/n`` share of ``T`` is held fixed)."""
        response = self._respond(_plan(self.params, theta[None]), np.array([self._lump_sum(x, theta)]))
        return self._labour(response.income[0])

    def _unilateral_rewards(self, x: np.ndarray, theta: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """``out[i, g] = φ(e + N(s_i a_ig) + T(l)) − κ a_ig``: the payoff of labour ``actions[i, g]``
        at the lump sum of the profile ``x`` (price-taking, consistent with the pseudo-gradient
        and the best response; at ``a = x_i`` it equals the reward)."""
        p = self.params
        income = p.skill[:, None] * actions
        coin = p.endowment + income - tax_liability(income, theta, p.cutoffs) + self._lump_sum(x, theta)
        return self._utility_of_coin(coin) - p.labour_cost * actions

    # -- the exact equilibrium ----------------------------------------------------------------
    def equilibrium_state(self, theta) -> EquilibriumState:
        """Solve ``T = R(T)`` exactly (module docstring, "Exact equilibrium") and report the
        equilibrium with its lump sum and free/pinned structure."""
        return self._equilibrium_state(self.validate_incentive(theta))

    def _equilibrium(self, theta: np.ndarray) -> np.ndarray:
        return self._equilibrium_state(theta).labour

    def _equilibrium_state(self, theta: np.ndarray) -> EquilibriumState:
        return EquilibriumState(*(field[0] for field in self._equilibria(theta[None])))

    def _equilibria(self, thetas: np.ndarray) -> EquilibriumState:
        """The exact equilibria of ``P`` schedules ``thetas`` ``(P, B)`` at once: an
        :class:`EquilibriumState` whose fields carry a leading axis of length ``P``.

        One safeguarded Newton iteration on ``g(T) = T − R(T)`` per schedule (module docstring),
        run in lockstep: every round evaluates the best responses of the schedules not yet
        solved, so a generation of a population-based search costs a few calls on ``(P, n, B)``
        arrays instead of ``P`` Python loops.
        """
        p = self.params
        count = thetas.shape[0]
        plan = _plan(p, thetas)
        # dR/dT on a regime: interior workers move with slope −1/(1 − θ_k), paying θ_k of it
        with np.errstate(divide="ignore"):
            drift = np.where(thetas < 1.0, thetas / (1.0 - thetas), 0.0)

        tax_intercept = tax_at_cutoffs(thetas, p.cutoffs) - thetas * p.cutoffs  # τ = intercept + θ_k z on k

        def schedule_tax(income: np.ndarray, rows: np.ndarray) -> np.ndarray:
            flat = bracket_index(income, p.cutoffs) + _row_offsets(rows.size, p.n_brackets)[:, None]
            return tax_intercept[rows].take(flat) + thetas[rows].take(flat) * income

        def evaluate(rows: np.ndarray, lump_sums: np.ndarray):
            response = self._respond(plan.rows(rows), lump_sums)
            revenue = schedule_tax(response.income, rows).mean(axis=1)
            flat = response.bracket + _row_offsets(rows.size, p.n_brackets)[:, None]
            moving = drift[rows].take(flat) * response.free
            return lump_sums - revenue, 1.0 + moving.sum(axis=1) / p.n, response

        everyone = np.arange(count)
        lump_sum = np.zeros(count)
        residual, slope, response = evaluate(everyone, lump_sum)
        income, free, bracket = response  # the latest response of every schedule
        done = residual >= 0.0  # R(0) = 0: nobody pays tax and T* = 0
        low, high = np.zeros(count), -residual
        bisect = np.zeros(count, dtype=bool)
        start_income, start_free, start_bracket = income.copy(), free.copy(), bracket.copy()
        start_sum, start_residual, start_slope = lump_sum.copy(), residual.copy(), slope.copy()
        for _ in range(NEWTON_ITERATIONS):
            rows = np.flatnonzero(~done)
            if rows.size == 0:
                break
            step = start_sum[rows] - start_residual[rows] / start_slope[rows]
            newton = ~bisect[rows] & (low[rows] < step) & (step <= high[rows])
            trial_sum = np.where(newton, step, 0.5 * (low[rows] + high[rows]))
            trial_residual, trial_slope, trial = evaluate(rows, trial_sum)
            lump_sum[rows] = trial_sum
            income[rows], free[rows], bracket[rows] = trial
            # g is affine between two points of one regime: the Newton step hit its root
            same_regime = (
                np.all(trial.free == start_free[rows], axis=1)
                & np.all(~trial.free | (trial.bracket == start_bracket[rows]), axis=1)
                & np.all(trial.free | (trial.income == start_income[rows]), axis=1)
            )
            finished = (trial_residual == 0.0) | (newton & same_regime)
            width = high[rows] - low[rows]
            below = trial_residual < 0.0
            low[rows] = np.where(below, trial_sum, low[rows])
            high[rows] = np.where(below, high[rows], trial_sum)
            bisect[rows] = newton & (high[rows] - low[rows] > 0.5 * width)  # Newton crawled: halve
            start_sum[rows], start_residual[rows], start_slope[rows] = trial_sum, trial_residual, trial_slope
            start_income[rows], start_free[rows], start_bracket[rows] = trial
            # the root sits on a jump of R: take the profile just above it
            jump = ~finished & (
                high[rows] - low[rows] <= 4.0 * np.finfo(float).eps * np.maximum(1.0, high[rows])
            )
            if jump.any():
                jumped = rows[jump]
                lump_sum[jumped] = high[jumped]
                _, _, at_high = evaluate(jumped, high[jumped])
                income[jumped], free[jumped], bracket[jumped] = at_high
            done[rows] = finished | jump
        tax = schedule_tax(income, everyone)
        revenue = tax.mean(axis=1)
        return EquilibriumState(
            labour=self._labour(income),
            income=income,
            coin=p.endowment + income - tax + revenue[:, None],
            lump_sum=lump_sum,
            bracket=bracket_index(income, p.cutoffs),
            free=free,
            budget_residual=lump_sum - revenue,
        )

    # -- the planner's side ---------------------------------------------------------------------
    def _social_cost(self, x: np.ndarray, theta: np.ndarray) -> float:
        """``f = −equality × productivity`` of the realised coin."""
        return -equality_times_productivity(self._coin(x, theta))

    def _coin_gradients(self, x: np.ndarray, theta: np.ndarray, coin_cotangent: np.ndarray):
        """``(∇_l g, ∇_θ g)`` of any ``g(c(l, θ))`` from ``∂g/∂c``: ``∂c_i/∂l_j = δ_ij s_i (1 − θ_k)
        + s_j θ_{k_j}/n`` and ``∂c_i/∂θ_b = M_b − m_b(z_i)``."""
        p = self.params
        income = p.skill * x
        k = bracket_index(income, p.cutoffs)
        total = coin_cotangent.sum()
        grad_x = p.skill * (coin_cotangent * (1.0 - theta[k]) + total * theta[k] / p.n)
        shares = bracket_incomes(income, p.cutoffs)
        grad_theta = total * shares.mean(axis=0) - coin_cotangent @ shares
        return grad_x, grad_theta

    def _social_cost_grad_x(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """``∇_l f = −s ⊙ (ω (1 − θ_k) + θ_k)`` (``ω`` the rank weights; ``Σ ω = n``)."""
        return self._coin_gradients(x, theta, -rank_weights(self._coin(x, theta)))[0]

    def _social_cost_grad_theta(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """``∇_θ f = Σ_i (ω_i − 1) m(z_i)``: a rate costs the rich, the lump sum pays everyone."""
        return self._coin_gradients(x, theta, -rank_weights(self._coin(x, theta)))[1]

    # -- exact derivatives of equilibrium outcomes (the ground truth's search) -------------------
    def _equilibrium_vjp(self, theta: np.ndarray, state: EquilibriumState, coin_cotangent: np.ndarray):
        """``∇_θ g(c*(θ))`` of a function of the equilibrium coin from ``∂g/∂c``, exact on the
        smooth piece of the equilibrium ``state`` of ``theta``.

        The implicit function theorem on ``v_F = 0`` over the workers ``F = state.free`` (the
        solver's own regime; bunched and capped workers keep their labour):
        ``∇_θ g − [∂v/∂θ]_Fᵀ ([∂v/∂l]_FF)^{−T} (∇_l g)_F``, one Sherman–Morrison solve of the
        diagonal-plus-rank-one block. For ``g = f`` this is what
        :func:`planners.hypergradient.exact_hypergradient` computes through the generic
        projected map (the tests check they agree); here it serves the search for the optimum
        and the frontier (log equality, log productivity), which differentiate other functions
        of coin and must not depend on the planners' package.
        """
        x, free = state.labour, state.free
        grad_x, grad_theta = self._coin_gradients(x, theta, coin_cotangent)
        structure = self._jacobian_x_structure(x, theta)
        diagonal = np.where(free, structure.diagonal, 1.0)
        left = np.where(free, structure.left[:, 0], 0.0)
        right = np.where(free, structure.right[:, 0], 0.0)
        rhs = np.where(free, grad_x, 0.0)
        # (D + r lᵀ) w = rhs  (the transpose of D + l rᵀ), by Sherman–Morrison
        base, shift = rhs / diagonal, right / diagonal
        adjoint = base - shift * (left @ base) / (1.0 + left @ shift)
        return grad_theta - self._vjp_theta(x, theta, adjoint)

    def _hypergradient(self, theta: np.ndarray) -> np.ndarray:
        """``∇f*(θ)``, exact on every smooth piece of ``f*`` (:meth:`_equilibrium_vjp` of ``f``)."""
        state = self._equilibrium_state(theta)
        return self._equilibrium_vjp(theta, state, -rank_weights(state.coin))

    def _log_equality_and_productivity(self, theta: np.ndarray):
        """``(log eq, ∇ log eq, log prod, ∇ log prod)`` at ``l*(θ)``, gradients exact on the
        smooth piece (``∂ eq/∂c = (ω − eq)/prod``, ``∂ prod/∂c = 1``)."""
        state = self._equilibrium_state(theta)
        total, eq = productivity(state.coin), equality(state.coin)
        grad_eq = self._equilibrium_vjp(theta, state, (rank_weights(state.coin) - eq) / (eq * total))
        grad_prod = self._equilibrium_vjp(theta, state, np.full(self.params.n, 1.0 / total))
        return np.log(eq), grad_eq, np.log(total), grad_prod

    # -- the reference optimum --------------------------------------------------------------------
    def optimum(self) -> OptimalSchedule:
        """The best schedule found by :func:`optimal_schedule` with its defaults, computed once
        per game and cached (its rates, equality, productivity and social cost)."""
        if self._optimum is None:
            self._optimum = optimal_schedule(self)
        return self._optimum

    def social_optimum(self) -> SocialOptimum:
        """The second best: ``f* = min_θ f(θ, l*(θ))``, ``l*(θ*)`` and ``θ*`` (:meth:`optimum`).

        The planner controls only the rates; the first best over labour is degenerate here
        because equality × productivity ignores the disutility of labour (everyone working
        ``L̄`` with full redistribution), so the engine's gaps are measured against the best
        schedule's equilibrium instead.
        """
        optimum = self.optimum()
        return SocialOptimum(optimum.social_cost, self._equilibrium(optimum.rates), optimum.rates.copy())


class _Plan(NamedTuple):
    """What the best responses to ``P`` schedules need, independent of the lump sum."""

    target: np.ndarray  # (P, n, B): c* = (s (1 − θ_b)/κ)^{1/η}
    intercept: np.ndarray  # (P, 1, B): A_b = e − τ(c_b) + θ_b c_b
    net: np.ndarray  # (P, 1, B): 1 − θ_b
    open: np.ndarray  # (P, 1, B): θ_b < 1 (a stationary point exists)
    low: np.ndarray  # (n, B)
    high: np.ndarray  # (n, B)
    valid: np.ndarray  # (n, B): the bracket meets [0, s L̄]

    def rows(self, rows: np.ndarray) -> _Plan:
        """The plan of the schedules ``rows``."""
        return self._replace(
            target=self.target[rows], intercept=self.intercept[rows], net=self.net[rows], open=self.open[rows]
        )


def _plan(p: TaxEconomyParams, thetas: np.ndarray) -> _Plan:
    net = 1.0 - thetas
    top_income = (p.skill * p.max_labour)[:, None]
    upper = np.append(p.cutoffs[1:], np.inf)
    with np.errstate(over="ignore"):  # an infinite target just means "as much as the box allows"
        target = (p.skill[:, None] * net[:, None, :] / p.labour_cost) ** (1.0 / p.eta)
    intercept = p.endowment - tax_at_cutoffs(thetas, p.cutoffs) + thetas * p.cutoffs
    valid = p.cutoffs <= top_income
    # an unreachable bracket gets the dummy candidate c_b (finite coin; masked out anyway)
    low = np.broadcast_to(p.cutoffs, valid.shape)
    high = np.where(valid, np.minimum(upper, top_income), p.cutoffs)
    return _Plan(target, intercept[:, None, :], net[:, None, :], net[:, None, :] > 0.0, low, high, valid)


def _row_offsets(rows: int, width: int) -> np.ndarray:
    """``width · [0, 1, …, rows − 1]``: flat offsets of the rows of a ``(rows, width)`` array
    (``a.take(k + offsets[:, None])`` picks ``a[r, k[r, i]]``, faster than ``take_along_axis``)."""
    return width * np.arange(rows)


# -- baselines ---------------------------------------------------------------------------------
def free_market_rates(game: TaxEconomyGame) -> np.ndarray:
    """No tax: ``θ = 0``."""
    return np.zeros(game.params.n_brackets)


def us_federal_rates(game: TaxEconomyGame) -> np.ndarray:
    """The 2018 US federal rates 10, 12, 22, 24, 32, 35, 37% (needs the seven US brackets)."""
    if game.params.n_brackets != len(US_FEDERAL_2018_RATES):
        raise ValueError(
            f"the US federal schedule has {len(US_FEDERAL_2018_RATES)} brackets, "
            f"the game has {game.params.n_brackets}"
        )
    return np.array(US_FEDERAL_2018_RATES)


def saez_rates(game: TaxEconomyGame) -> np.ndarray:
    """The Saez schedule, from the free-market income distribution and the utility's elasticities.

    Saez, E. (2001), "Using Elasticities to Derive Optimal Income Tax Rates", Review of
    Economic Studies 68(1), 205–229, derives optimal marginal rates from a small reform: raising
    the rate of bracket ``b`` by ``dθ`` (i) collects ``m_b(z_i) dθ`` more from every worker
    (mechanical effect), (ii) costs welfare ``g_i m_b(z_i) dθ`` in units of public funds, (iii)
    makes workers inside the bracket earn less through the compensated elasticity ``ζ^c``,
    ``dz_i = −ζ^c z_i dθ/(1 − θ_b)``, and (iv) makes everyone with income in the bracket earn
    more through the income effect ``η_I = −(1 − θ)∂z/∂R``, ``dz_i = η_I m_b(z_i) dθ/(1 − θ_{k_i})``.
    At the optimum the four cancel; with ``ρ_b = θ_b/(1 − θ_b)``:

        ζ^c Z_b ρ_b = Σ_i (1 − g_i) m_b(z_i) + η_I Σ_i m_b(z_i) ρ_{k_i},   Z_b = Σ_{k_i = b} z_i.

    For the top bracket this is Saez's high-income formula
    ``θ = (1 − ḡ)/(1 − ḡ + ā ζ^u + η_I (ā − 1))`` with ``ζ^u = ζ^c − η_I`` and
    ``ā = Z_top / Σ_top (z − c_top)`` the empirical Pareto parameter.

    Choices, stated exactly:

    * Elasticities from the utility: an interior worker facing net-of-tax rate ``1 − θ`` and
      virtual income ``R`` targets coin ``(s(1 − θ)/κ)^{1/η}``, so at ``R = 0``
      ``ζ^c = 1/η``, ``η_I = 1`` and ``ζ^u = 1/η − 1``, for every skill and rate — the formula
      treats every worker as such an interior responder (it has no notion of the labour cap).
    * Welfare weights: the planner's own, ``g_i = ω_i = 2(n − r_i)/(n − 1)`` (the gradient of
      equality × productivity with respect to coin, mean 1), at the free-market coin.
    * Distribution: the free-market equilibrium incomes ``z_i`` (``θ = 0``), computed once.
      Re-evaluating the formula at the equilibrium of its own output and iterating does not
      give a useful fixed point: brackets emptied by high rates have ``Z_b = 0`` and the formula
      sends their rates to 1, a self-confirming schedule with 100% rates on the lower brackets.
    * Solution: the system is triangular (``ρ_{k_i}`` involves only brackets ``k_i >= b``), so it
      is solved exactly from the top bracket down, rates clipped to ``[0, 1]``: a bracket with a
      negative right-hand side gets 0, an empty bracket with a positive one gets 1 (no worker
      is on its margin).
    """
    p = game.params
    state = game.equilibrium_state(np.zeros(p.n_brackets))
    income, k = state.income, state.bracket
    weights = rank_weights(state.coin)
    shares = bracket_incomes(income, p.cutoffs)
    mechanical = (1.0 - weights) @ shares
    # spillover[b, b'] = income in bracket b of the workers whose income is in bracket b'
    spillover = np.stack(
        [np.bincount(k, weights=shares[:, b], minlength=p.n_brackets) for b in range(p.n_brackets)]
    )
    inside = np.bincount(k, weights=income, minlength=p.n_brackets)
    compensated, income_effect = 1.0 / p.eta, 1.0
    ratio, rates = np.zeros(p.n_brackets), np.zeros(p.n_brackets)
    for b in reversed(range(p.n_brackets)):
        rhs = mechanical[b] + income_effect * (spillover[b, b + 1 :] @ ratio[b + 1 :])
        denominator = compensated * inside[b] - income_effect * spillover[b, b]
        if rhs <= 0.0:
            continue
        if inside[b] <= 0.0:
            rates[b] = 1.0  # empty bracket: its ratio never enters another bracket's equation
            continue
        ratio[b] = rhs / denominator  # denominator >= (1/η − 1) Z_b > 0
        rates[b] = ratio[b] / (1.0 + ratio[b])
    return rates


# -- the exact optimum and the frontier -------------------------------------------------------
class OptimalSchedule(NamedTuple):
    """The best schedule found by :func:`optimal_schedule`."""

    rates: np.ndarray
    social_cost: float
    equality: float
    productivity: float
    evaluations: int


def optimal_schedule(
    game: TaxEconomyGame,
    *,
    seed: int = 0,
    popsize: int = 12,
    maxiter: int = 150,
) -> OptimalSchedule:
    """The schedule maximising equality × productivity at the exact equilibrium.

    Global search: ``f*(θ)`` is piecewise smooth with kinks (workers reaching a cutoff or a
    box end) and, for falling rates, jumps (workers switching bracket), so a local method
    alone can stall. :func:`scipy.optimize.differential_evolution` (Storn & Price 1997) explores
    ``[0, 1]^B`` from a seeded Latin-hypercube population of ``popsize · B`` schedules, to which
    the three baselines and flat taxes of 10–50% are added; each generation's equilibria are
    solved together (:meth:`TaxEconomyGame._equilibria`). Its best schedule is then polished by
    L-BFGS-B with the exact hypergradient (:meth:`TaxEconomyGame._hypergradient`), kept only
    if it improves, and finished by projected gradient descent (:func:`_projected_descent`),
    which reaches optima at kinks of ``f*`` where line searches stop. Each evaluation is one exact equilibrium (O(nB) per Newton step);
    the defaults take about 13,600 of them (a minute of one core at n = 1000).

    Reproducibility, measured at n = 1000 on instances 0, 1, 2 with search seeds 0, 1, 2:
    equality × productivity agreed to 3e-7, 3e-6 and 1.6e-5 (relative) across the three
    restarts of each instance, with the same rates up to 1e-3 except the sixth bracket of
    instance 2 (0.696 vs 0.730, a nearly flat direction). ``f*`` is continuous for rising
    rates but has sharp kinks: the optimum found puts the top rate where the richest workers at
    the labour cap are about to leave it, so the hypergradient changes sign there. The value is
    the best found, not a certificate of global optimality.
    """
    seed = check_int(seed, "seed", low=0)
    popsize = check_positive_int(popsize, "popsize", 1000)
    maxiter = check_positive_int(maxiter, "maxiter", 10**6)
    p = game.params
    dim = p.n_brackets
    counter = {"evaluations": 0}

    def cost(theta: np.ndarray) -> float:
        counter["evaluations"] += 1
        return -equality_times_productivity(game._equilibrium_state(np.clip(theta, 0.0, 1.0)).coin)

    order_weights = 2.0 * (p.n - np.arange(1, p.n + 1)) / (p.n - 1)  # ω of the ascending coin

    def costs(thetas: np.ndarray) -> np.ndarray:  # a generation, shape (B, S): S equilibria at once
        counter["evaluations"] += thetas.shape[1]
        return -(np.sort(game._equilibria(np.clip(thetas.T, 0.0, 1.0)).coin, axis=1) @ order_weights)

    def gradient(theta: np.ndarray) -> np.ndarray:
        return game._hypergradient(np.clip(theta, 0.0, 1.0))

    known = [free_market_rates(game), saez_rates(game)] + [np.full(dim, rate) for rate in (0.1, 0.3, 0.5)]
    if dim == len(US_FEDERAL_2018_RATES):
        known.append(us_federal_rates(game))
    population = np.vstack([qmc.LatinHypercube(d=dim, rng=seed).random(max(5, popsize * dim)), known])
    search = scipy.optimize.differential_evolution(
        costs,
        [(0.0, 1.0)] * dim,
        init=population,
        maxiter=maxiter,
        tol=1e-10,
        rng=seed,
        polish=False,
        vectorized=True,
        updating="deferred",
    )
    best = np.clip(search.x, 0.0, 1.0)
    polish = scipy.optimize.minimize(
        cost,
        best,
        jac=gradient,
        method="L-BFGS-B",
        bounds=[(0.0, 1.0)] * dim,
        options={"maxiter": 500, "ftol": 1e-15, "gtol": 1e-12},
    )
    polished = np.clip(polish.x, 0.0, 1.0)
    # re-evaluated: near a jump of f* an optimiser's reported value may belong to another point
    best_cost, polished_cost = cost(best), cost(polished)
    if polished_cost < best_cost:
        best, best_cost = polished, polished_cost
    best, best_cost = _projected_descent(cost, gradient, best, best_cost)
    coin = game._equilibrium_state(best).coin
    return OptimalSchedule(best, best_cost, equality(coin), productivity(coin), counter["evaluations"])


def _projected_descent(cost, gradient, theta: np.ndarray, value: float, evaluations: int = 300):
    """Projected gradient descent on ``[0, 1]^B`` with a step that doubles after a decrease and
    halves after a failure, from ``theta`` with cost ``value``, for at most ``evaluations``
    costs. It finishes what quasi-Newton polishing leaves at a kink of ``f*`` (where the
    gradient changes sign, line searches fail): rates a hair above 0 are projected onto it and
    a rate short of the kink walks up to it."""
    step = 1e-2
    for _ in range(evaluations):
        direction = gradient(theta)
        scale = float(np.max(np.abs(direction)))
        if scale == 0.0 or step < 1e-12:
            break
        trial = np.clip(theta - step * direction / scale, 0.0, 1.0)
        trial_value = cost(trial)
        if trial_value < value:
            theta, value, step = trial, trial_value, 2.0 * step
        else:
            step *= 0.5
    return theta, value


class FrontierPoint(NamedTuple):
    """One schedule on the equality–productivity frontier, with its equilibrium's values."""

    rates: np.ndarray
    equality: float
    productivity: float


def pareto_frontier(
    game: TaxEconomyGame, weights=None, starts=None, samples: int = 1024, seed: int = 0
) -> list[FrontierPoint]:
    """The equality–productivity frontier of the exact model: the non-dominated schedules among
    weighted-log optima and a quasi-random sample, sorted by rising equality.

    Two sources of candidates, each evaluated at its exact equilibrium:

    * for each weight ``λ`` (default 0, 0.1, …, 1), the best of L-BFGS-B searches with exact
      hypergradients maximising ``λ log eq + (1 − λ) log prod`` from the previous weight's
      solution (a warm start along the frontier), the given ``starts`` (e.g. the optimal
      schedule, whose equality × productivity is the ``λ = 1/2`` objective), the free market
      and flat taxes of 20, 50 and 80%. These find the points supported in log space;
    * ``samples`` schedules of a scrambled Sobol sequence of ``[0, 1]^B`` (seeded): the
      frontier is not concave in log space (small taxes lower equality here, because the
      elastic low earners cut their coin more than the capped high earners), so its
      unsupported stretches come from this sample.

    The non-dominated subset (no other candidate has both higher equality and higher
    productivity) is returned. Each point is the best found, not certified.
    """
    p = game.params
    weights = np.linspace(0.0, 1.0, 11) if weights is None else as_finite_array(weights, "weights")
    if weights.ndim != 1 or np.any((weights < 0) | (weights > 1)):
        raise ValueError(f"weights must be a 1-D array of numbers in [0, 1], got {weights!r}")
    extra = (
        [] if starts is None else [game.validate_incentive(s, f"starts[{i}]") for i, s in enumerate(starts)]
    )
    samples = check_int(samples, "samples", low=0, high=2**20)
    seed = check_int(seed, "seed", low=0)
    bounds = [(0.0, 1.0)] * p.n_brackets
    candidates, previous = [], None
    for weight in weights:

        def objective(theta: np.ndarray, weight=float(weight)):
            value_eq, grad_eq, value_prod, grad_prod = game._log_equality_and_productivity(
                np.clip(theta, 0.0, 1.0)
            )
            value = weight * value_eq + (1.0 - weight) * value_prod
            return -value, -(weight * grad_eq + (1.0 - weight) * grad_prod)

        starts_here = [np.zeros(p.n_brackets)] + [np.full(p.n_brackets, r) for r in (0.2, 0.5, 0.8)] + extra
        if previous is not None:
            starts_here.append(previous)
        best, best_value = None, np.inf
        for start in starts_here:
            result = scipy.optimize.minimize(objective, start, jac=True, method="L-BFGS-B", bounds=bounds)
            for point in (start, np.clip(result.x, 0.0, 1.0)):  # values re-evaluated (kinks of f*)
                value = objective(point)[0]
                if value < best_value:
                    best, best_value = point, value
        previous = best
        candidates.append(best)
    if samples:
        candidates.extend(qmc.Sobol(d=p.n_brackets, rng=seed).random(samples))
    values = np.array([_equality_and_productivity(game, rates) for rates in candidates])
    order = np.lexsort((-values[:, 1], -values[:, 0]))  # equality falling, ties: productivity falling
    kept, best_productivity = [], -np.inf
    for index in order:  # a candidate is non-dominated if it beats every more equal one on productivity
        if values[index, 1] > best_productivity:
            kept.append(index)
            best_productivity = values[index, 1]
    return [FrontierPoint(candidates[i], float(values[i, 0]), float(values[i, 1])) for i in reversed(kept)]


def _equality_and_productivity(game: TaxEconomyGame, rates: np.ndarray) -> tuple[float, float]:
    coin = game._equilibrium_state(rates).coin
    return equality(coin), productivity(coin)
