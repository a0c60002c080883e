"""The game protocol shared by every game, learner, planner and metric.

A game of incentive design (SPEC §1, paper eq. 3.3–3.4) is described by

* a joint strategy ``x`` (a flat vector; agent ``i`` owns the coordinates
  ``strategy_set.agent_slices[i]``) in a product of boxes, simplices or Euclidean spaces;
* an incentive ``θ`` in a box ``incentive_set``;
* the pseudo-gradient ``v_θ(x) = (∇_{x^i} u^i_θ(x))_i`` — every agent's *ascent*
  direction of its own reward; a Nash equilibrium solves the variational inequality
  ``<v_θ(x*), x − x*> ≤ 0`` for all ``x`` in the strategy set;
* the planner's (social) cost ``f(θ, x)``, minimised by the planner at equilibrium.

:class:`IncentiveGame` is the abstract base all games implement. Planners and learners
depend on it only, never on a concrete game.
"""

from __future__ import annotations

import abc
import functools
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np

from incentive_envs.validation import as_finite_array, check_int

try:
    from numpy._core.umath import clip as _clip_ufunc  # NumPy 2
except ImportError:  # NumPy 1.x
    from numpy.core.umath import clip as _clip_ufunc

StrategyKind = Literal["box", "simplex", "unconstrained"]


def frozen(array) -> np.ndarray:
    """A read-only float64 copy (parameter arrays of the frozen dataclasses)."""
    array = np.array(array, dtype=np.float64)
    array.setflags(write=False)
    return array


INTERIOR_TOLERANCE = 1e-12
"""Relative margin (to the bound's magnitude, at least 1) inside which a box coordinate counts
as being on its bound (:attr:`StrategySet.interior_bounds`)."""


def clip_into(values: np.ndarray, bounds: tuple) -> np.ndarray:
    """``values`` clipped to ``bounds = (lower, upper)`` in place: one pass of the ufunc behind
    ``np.clip`` without its Python wrapper (what the inner loops use; 4× faster than
    ``maximum`` then ``minimum`` at 1e5 coordinates, 3× faster than ``np.clip`` at 100)."""
    return _clip_ufunc(values, bounds[0], bounds[1], out=values)


def _compact_bounds(lower: np.ndarray, upper: np.ndarray) -> tuple:
    """``(lower, upper)`` as two floats when every coordinate shares them (clipping and
    comparing against scalars is several times faster than against arrays), else the arrays."""
    if lower.size and lower.min() == lower.max() and upper.min() == upper.max():
        return float(lower[0]), float(upper[0])
    return lower, upper


@dataclass(frozen=True, eq=False)
class StrategySet:
    """A product of per-agent strategy sets of one kind.

    Parameters
    ----------
    kind : {"box", "simplex", "unconstrained"}
        ``box``: ``lower <= x <= upper`` coordinate-wise; ``simplex``: each agent's block
        is a probability simplex; ``unconstrained``: ``R^d``.
    agent_sizes : tuple of int
        ``d^i``, the number of coordinates of each agent, in agent order.
    lower, upper : ndarray, optional
        Box bounds of shape ``(dim,)`` (``kind="box"`` only; ``upper`` may be ``inf``).

    Attributes
    ----------
    bounds : tuple
        Box sets: ``(lower, upper)`` as floats when every coordinate shares them, else arrays
        (what :meth:`project` clips against).
    """

    kind: StrategyKind
    agent_sizes: tuple[int, ...]
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("box", "simplex", "unconstrained"):
            raise ValueError(f"kind must be 'box', 'simplex' or 'unconstrained', got {self.kind!r}")
        sizes = np.asarray(self.agent_sizes)
        if sizes.ndim != 1 or sizes.size == 0 or sizes.dtype.kind not in "iu" or sizes.min() < 1:
            raise ValueError(f"agent_sizes must be positive integers, got {self.agent_sizes!r}"[:200])
        object.__setattr__(self, "agent_sizes", tuple(sizes.tolist()))
        dim = int(sizes.sum())
        if self.kind == "box":
            if self.lower is None or self.upper is None:
                raise ValueError("a box strategy set needs both lower and upper bounds")
            lower = np.broadcast_to(np.asarray(self.lower, dtype=np.float64), (dim,))
            upper = np.broadcast_to(np.asarray(self.upper, dtype=np.float64), (dim,))
            if np.any(np.isnan(lower)) or np.any(np.isnan(upper)) or np.any(lower > upper):
                raise ValueError("box bounds must satisfy lower <= upper without NaN")
            object.__setattr__(self, "lower", frozen(lower))
            object.__setattr__(self, "upper", frozen(upper))
            object.__setattr__(self, "bounds", _compact_bounds(self.lower, self.upper))
        elif self.lower is not None or self.upper is not None:
            raise ValueError(f"bounds are only meaningful for a box, not for {self.kind!r}")
        offsets = np.concatenate(([0], np.cumsum(sizes)))
        offsets.setflags(write=False)
        object.__setattr__(self, "_offsets", offsets)
        agent_of_coordinate = np.repeat(np.arange(len(sizes)), sizes)
        agent_of_coordinate.setflags(write=False)
        object.__setattr__(self, "_agent_of_coordinate", agent_of_coordinate)

    @property
    def dim(self) -> int:
        """Total number of coordinates ``d = Σ_i d^i``."""
        return int(self._offsets[-1])

    @property
    def n_agents(self) -> int:
        return len(self.agent_sizes)

    @property
    def agent_slices(self) -> list[slice]:
        """The coordinates of each agent in the flat joint strategy."""
        return [slice(int(a), int(b)) for a, b in zip(self._offsets[:-1], self._offsets[1:])]

    @property
    def agent_of_coordinate(self) -> np.ndarray:
        """Integer array of shape ``(dim,)``: the agent owning each coordinate."""
        return self._agent_of_coordinate

    def block_sum(self, x: np.ndarray) -> np.ndarray:
        """Per-agent sums ``Σ_{a} x^{ia}`` of a flat vector, shape ``(n_agents,)``."""
        return np.add.reduceat(x, self._offsets[:-1])

    def project(self, x: np.ndarray) -> np.ndarray:
        """Euclidean projection onto the set (sorting-based per simplex block)."""
        if self.kind == "unconstrained":
            return np.array(x, dtype=np.float64)
        if self.kind == "box":
            return np.clip(x, *self.bounds)
        return self._project_simplex(np.asarray(x, dtype=np.float64))

    def _project_simplex(self, x: np.ndarray) -> np.ndarray:
        # Held & Wolfe / Duchi et al.: threshold per block found on the sorted values.
        agent = self._agent_of_coordinate
        order = np.lexsort((-x, agent))
        sorted_x = x[order]
        block_start = self._offsets[:-1][agent]
        cumulative = np.cumsum(sorted_x)
        block_offset = np.concatenate(([0.0], cumulative))[block_start]
        within_cumsum = cumulative - block_offset
        rank = np.arange(self.dim) - block_start + 1
        candidate = (within_cumsum - 1.0) / rank
        positive = sorted_x > candidate
        last_positive = np.zeros(self.n_agents, dtype=np.int64)
        np.maximum.at(last_positive, agent[positive], np.flatnonzero(positive))
        threshold = candidate[last_positive]
        return np.maximum(x - threshold[agent], 0.0)

    def exponentiated(self, x: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """The entropic step ``x^i ⊙ exp(s^i) / ‖x^i ⊙ exp(s^i)‖_1`` of every simplex block,
        computed in log space (a coordinate at 0 stays at 0; no overflow)."""
        starts = self._offsets[:-1]
        with np.errstate(divide="ignore"):
            log_weights = np.log(x) + scores
        log_weights -= np.maximum.reduceat(log_weights, starts)[self._agent_of_coordinate]
        weights = np.exp(log_weights)
        return weights / np.repeat(np.add.reduceat(weights, starts), self.agent_sizes)

    def contains(self, x: np.ndarray, atol: float = 1e-9) -> bool:
        """Whether ``x`` lies in the set up to ``atol`` (relative to a box bound's magnitude when
        it exceeds 1, so a float32-rounded bound is inside at ``atol = 1e-7``)."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape != (self.dim,) or not np.all(np.isfinite(x)):
            return False
        if self.kind == "box":
            with np.errstate(invalid="ignore"):  # infinite bounds: inf - inf never compared
                low_slack = atol * np.maximum(1.0, np.abs(np.where(np.isfinite(self.lower), self.lower, 0.0)))
                high_slack = atol * np.maximum(
                    1.0, np.abs(np.where(np.isfinite(self.upper), self.upper, 0.0))
                )
            return bool(np.all(x >= self.lower - low_slack) and np.all(x <= self.upper + high_slack))
        if self.kind == "simplex":
            return bool(np.all(x >= -atol) and np.allclose(self.block_sum(x), 1.0, atol=atol))
        return True

    @functools.cached_property
    def interior_bounds(self) -> tuple:
        """Box sets: ``(lower + s, upper − s)`` with ``s = 1e-12 · max(1, |bound|)``, the bounds a
        point must be strictly within to count as interior (floats when uniform)."""
        lower, upper = self.bounds
        return (
            lower + INTERIOR_TOLERANCE * np.maximum(1.0, np.abs(lower)),
            upper - INTERIOR_TOLERANCE * np.maximum(1.0, np.abs(upper)),
        )

    def action_grid(self, grid_size: int) -> np.ndarray:
        """``(n_agents, G)`` evenly spaced actions spanning each one-dimensional agent's box
        (the action set of payoff-based learners and of the envs' ``"payoffs"`` feedback)."""
        if self.kind != "box" or max(self.agent_sizes) != 1:
            raise ValueError("an action grid needs one-dimensional box strategies per agent")
        if not (np.all(np.isfinite(self.lower)) and np.all(np.isfinite(self.upper))):
            raise ValueError("an action grid needs finite strategy bounds")
        grid_size = check_int(grid_size, "grid_size", low=2, high=100_000)
        fractions = np.linspace(0.0, 1.0, grid_size)
        return self.lower[:, None] + fractions[None, :] * (self.upper - self.lower)[:, None]

    def uniform_point(self) -> np.ndarray:
        """A canonical interior-ish point: the barycentre of each simplex, the box's lower
        corner (or 0 for unconstrained coordinates)."""
        if self.kind == "simplex":
            return 1.0 / np.repeat(np.asarray(self.agent_sizes, dtype=np.float64), self.agent_sizes)
        if self.kind == "box":
            return np.where(np.isfinite(self.lower), self.lower, np.minimum(0.0, self.upper))
        return np.zeros(self.dim)


@dataclass(frozen=True, eq=False)
class IncentiveSet:
    """The box ``Θ = [lower, upper]`` of admissible incentives (SPEC §1)."""

    lower: np.ndarray
    upper: np.ndarray

    def __post_init__(self) -> None:
        lower = np.atleast_1d(np.asarray(self.lower, dtype=np.float64))
        upper = np.atleast_1d(np.asarray(self.upper, dtype=np.float64))
        if lower.shape != upper.shape or lower.ndim != 1:
            raise ValueError(
                f"incentive bounds must be 1-D of equal shape, got {lower.shape} and {upper.shape}"
            )
        if not (np.all(np.isfinite(lower)) and np.all(np.isfinite(upper))):
            raise ValueError("incentive bounds must be finite (Θ is compact)")
        if np.any(lower > upper):
            raise ValueError("incentive bounds must satisfy lower <= upper")
        object.__setattr__(self, "lower", frozen(lower))
        object.__setattr__(self, "upper", frozen(upper))
        object.__setattr__(self, "bounds", _compact_bounds(self.lower, self.upper))

    @property
    def dim(self) -> int:
        return int(self.lower.shape[0])

    def project(self, theta: np.ndarray) -> np.ndarray:
        """Euclidean projection onto Θ (the planner's proximal step in Algorithms 1–2)."""
        return np.clip(theta, *self.bounds)

    def validate(self, theta, name: str = "theta") -> np.ndarray:
        """Return ``theta`` as an array, or raise ``ValueError`` if malformed or outside Θ."""
        theta = as_finite_array(theta, name, (self.dim,))
        outside = np.flatnonzero((theta < self.lower) | (theta > self.upper))
        if outside.size:
            i = int(outside[0])
            raise ValueError(
                f"{name}[{i}] = {float(theta[i])!r} is outside the incentive bounds "
                f"[{float(self.lower[i])!r}, {float(self.upper[i])!r}] ({outside.size} entries outside)"
            )
        return theta


def _finite(value, call: str):
    """``value`` if every entry is finite; else ``ValueError`` naming the call and its arguments
    (finite inputs can still overflow float64, e.g. a tangent of 1e308)."""
    if not np.all(np.isfinite(value)):
        raise ValueError(f"{call} is not finite: the arguments are too large for float64")
    return value


class FirstBestIncentive(NamedTuple):
    """An incentive ``theta`` whose equilibrium is the social optimum; ``unique`` says
    whether it is the only minimiser of ``f*(θ)`` over Θ (so an incentive gap is defined)."""

    theta: np.ndarray
    unique: bool


class OwnPriceIncentive:
    """Mixin for games whose incentive is a per-coordinate linear price in the agents' costs
    and a pure transfer for the planner: ``∂v/∂θ = −I`` and ``∇_θ f = 0``."""

    linear_prices = True

    def _jvp_theta(self, x: np.ndarray, theta: np.ndarray, tangent: np.ndarray) -> np.ndarray:
        return -tangent

    def _vjp_theta(self, x: np.ndarray, theta: np.ndarray, cotangent: np.ndarray) -> np.ndarray:
        return -cotangent

    def _social_cost_grad_theta(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        return self._zero_incentive_gradient

    @functools.cached_property
    def _zero_incentive_gradient(self) -> np.ndarray:
        return frozen(np.zeros(self.incentive_set.dim))


def check_finite_scale(game: IncentiveGame, params) -> None:
    """Refuse parameters whose magnitudes overflow float64: the rewards, pseudo-gradient and
    social cost must be finite at the corners of a box strategy set (and its canonical point)
    under the incentive bounds. The ``ValueError`` quotes the numeric fields of the dataclass
    ``params``, so the culprit is named. Called by the box games' constructors."""
    strategy_set, incentive_set = game.strategy_set, game.incentive_set
    points = [strategy_set.uniform_point()]
    if strategy_set.kind == "box":
        points += [
            np.where(np.isfinite(bound), bound, 0.0) for bound in (strategy_set.lower, strategy_set.upper)
        ]
    with np.errstate(all="ignore"):
        for x in points:
            for theta in (incentive_set.lower, incentive_set.upper):
                try:
                    values = (
                        game._rewards(x, theta),
                        game._pseudo_gradient(x, theta),
                        game._social_cost(x, theta),
                    )
                except OverflowError:  # Python float arithmetic raises where NumPy returns inf
                    values = (np.inf,)
                if not all(np.all(np.isfinite(value)) for value in values):
                    scalars = ", ".join(
                        f"max |{name}| = {np.max(np.abs(value)):.3g}"
                        if isinstance(value, np.ndarray)
                        else f"{name}={value!r}"
                        for name, value in vars(params).items()
                        if isinstance(value, (float, tuple, np.ndarray))
                    )
                    raise ValueError(
                        f"the parameters of {type(game).__name__} overflow float64 (rewards or social cost "
                        f"not finite at the strategy bounds); check their magnitudes: {scalars}"
                    )


class SocialOptimum(NamedTuple):
    """The reference outcome of the planner's cost.

    Attributes
    ----------
    value : float
        ``f*``. For the first best (``incentive is None``): ``min_x f(θ, x)``, the cost being
        independent of ``θ`` (incentives are transfers).
    strategy : ndarray
        A minimiser ``x_so``.
    incentive : ndarray or None
        For games whose cost depends on ``θ`` and whose first best over ``x`` is not
        implementable (a tax that redistributes coin: :mod:`incentive_envs.tax_economy`), the
        *second best* ``f* = min_θ f(θ, x*(θ))`` is the reference: ``incentive`` is its ``θ*``
        and ``strategy = x*(θ*)``. ``None`` for a first best.
    """

    value: float
    strategy: np.ndarray
    incentive: np.ndarray | None = None


class LowRankJacobian(NamedTuple):
    """``∂v/∂x = diag(diagonal) + left @ right.T`` with ``left, right`` of shape ``(dim, r)``,
    ``r`` small: the structure that lets a hypergradient's adjoint system be solved directly in
    ``O(dim r²)`` (Woodbury) instead of iteratively.

    A part whose rows are the same for every coordinate is stored once: ``diagonal`` of shape
    ``(1,)`` and ``left``/``right`` of shape ``(1, r)`` stand for ``dim`` equal rows (Cournot's
    ``−(γ + k) I − γ 11ᵀ`` is three numbers), so restricting the system to the free
    coordinates (:meth:`restrict`) and solving it touch only the parts that vary."""

    diagonal: np.ndarray
    left: np.ndarray
    right: np.ndarray

    def restrict(self, index: np.ndarray, *, transpose: bool = False) -> LowRankJacobian:
        """The rows and columns ``index`` (uniform parts are kept as they are), transposed
        (``diag(diagonal) + right @ left.T``) if asked."""
        diagonal, left, right = self
        if transpose:
            left, right = right, left
        return LowRankJacobian(
            diagonal if diagonal.shape[0] == 1 else diagonal[index],
            left if left.shape[0] == 1 else left[index],
            right if right.shape[0] == 1 else right[index],
        )

    def dense(self, dim: int) -> np.ndarray:
        """The ``dim × dim`` matrix (tests and small systems)."""
        rank = self.left.shape[1]
        left = np.broadcast_to(self.left, (dim, rank))
        right = np.broadcast_to(self.right, (dim, rank))
        return np.diag(np.broadcast_to(self.diagonal, (dim,))) + left @ right.T


class IncentiveGame(abc.ABC):
    """The model of a game with planner-controlled incentives (SPEC §1).

    All arrays are flat float64: ``x`` has shape ``(strategy_set.dim,)`` and ``θ`` shape
    ``(incentive_set.dim,)``. The public methods validate their inputs
    (:mod:`incentive_envs.validation`: shapes, finiteness, ``x`` in the strategy set, ``θ`` in
    Θ) and call the underscore methods a game implements. Learners, planners and the
    experiment engine validate a run's inputs once and then call the underscore methods
    directly in their inner loops, so validation costs nothing per iteration.

    Capabilities are declared, not discovered by catching exceptions:
    :attr:`has_best_response`, :attr:`has_payoffs`, :attr:`linear_prices` and
    :meth:`_jacobian_x_structure` (``None`` when ``∂v/∂x`` has no diagonal-plus-low-rank form).
    """

    strategy_set: StrategySet
    incentive_set: IncentiveSet
    has_best_response = False
    """Whether :meth:`best_response` is implemented."""
    has_payoffs = False
    """Whether :meth:`unilateral_rewards` (counterfactual payoffs) is implemented."""
    linear_prices = False
    """Whether the incentive is a linear price on each agent's own action (``∂v/∂θ = −I``) and a
    transfer for the planner (``∇_θ f = 0``)."""

    @property
    def n_agents(self) -> int:
        return self.strategy_set.n_agents

    # -- what a game implements (unchecked) -----------------------------------------------
    @abc.abstractmethod
    def _rewards(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray: ...

    @abc.abstractmethod
    def _pseudo_gradient(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray: ...

    @abc.abstractmethod
    def _jvp_x(self, x: np.ndarray, theta: np.ndarray, tangent: np.ndarray) -> np.ndarray: ...

    @abc.abstractmethod
    def _vjp_x(self, x: np.ndarray, theta: np.ndarray, cotangent: np.ndarray) -> np.ndarray: ...

    @abc.abstractmethod
    def _jvp_theta(self, x: np.ndarray, theta: np.ndarray, tangent: np.ndarray) -> np.ndarray: ...

    @abc.abstractmethod
    def _vjp_theta(self, x: np.ndarray, theta: np.ndarray, cotangent: np.ndarray) -> np.ndarray: ...

    @abc.abstractmethod
    def _equilibrium(self, theta: np.ndarray) -> np.ndarray: ...

    @abc.abstractmethod
    def _social_cost(self, x: np.ndarray, theta: np.ndarray) -> float: ...

    @abc.abstractmethod
    def _social_cost_grad_x(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray: ...

    @abc.abstractmethod
    def _social_cost_grad_theta(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray: ...

    def _best_response(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        raise ValueError(f"{type(self).__name__} has no exact best response (has_best_response is False)")

    def _unilateral_rewards(self, x: np.ndarray, theta: np.ndarray, actions: np.ndarray) -> np.ndarray:
        raise ValueError(f"{type(self).__name__} has no counterfactual payoffs (has_payoffs is False)")

    def _jacobian_x_structure(self, x: np.ndarray, theta: np.ndarray) -> LowRankJacobian | None:
        return None

    def _pinned_coordinates(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray | None:
        """Coordinates held in place by a kink of the agents' payoffs (e.g. a worker bunched at
        a tax-bracket cutoff), which a gradient step does not move and which do not respond
        to small changes of θ — like coordinates on a bound. Boolean mask, or ``None`` (the
        default) for games with smooth payoffs."""
        return None

    # -- the agents' side (validated) -----------------------------------------------------
    def rewards(self, x, theta) -> np.ndarray:
        """Each agent's reward ``u^i_θ(x)`` including incentives, shape ``(n_agents,)``."""
        return _finite(self._rewards(*self._checked(x, theta)), "rewards(x, theta)")

    def pseudo_gradient(self, x, theta) -> np.ndarray:
        """``v_θ(x) = (∇_{x^i} u^i_θ(x))_i``, shape ``(dim,)`` (paper eq. 3.3)."""
        return _finite(self._pseudo_gradient(*self._checked(x, theta)), "pseudo_gradient(x, theta)")

    def jvp_x(self, x, theta, tangent) -> np.ndarray:
        """Jacobian-vector product ``[∂v_θ/∂x](x) · tangent``."""
        x, theta = self._checked(x, theta)
        return _finite(
            self._jvp_x(x, theta, as_finite_array(tangent, "tangent", (self.strategy_set.dim,))),
            "jvp_x(x, theta, tangent)",
        )

    def vjp_x(self, x, theta, cotangent) -> np.ndarray:
        """Vector-Jacobian product ``[∂v_θ/∂x](x)^T · cotangent``."""
        x, theta = self._checked(x, theta)
        return _finite(
            self._vjp_x(x, theta, as_finite_array(cotangent, "cotangent", (self.strategy_set.dim,))),
            "vjp_x(x, theta, cotangent)",
        )

    def jvp_theta(self, x, theta, tangent) -> np.ndarray:
        """``[∂v_θ/∂θ](x) · tangent`` (tangent of shape ``(incentive_set.dim,)``)."""
        x, theta = self._checked(x, theta)
        return _finite(
            self._jvp_theta(x, theta, as_finite_array(tangent, "tangent", (self.incentive_set.dim,))),
            "jvp_theta(x, theta, tangent)",
        )

    def vjp_theta(self, x, theta, cotangent) -> np.ndarray:
        """``[∂v_θ/∂θ](x)^T · cotangent``, shape ``(incentive_set.dim,)``."""
        x, theta = self._checked(x, theta)
        return _finite(
            self._vjp_theta(x, theta, as_finite_array(cotangent, "cotangent", (self.strategy_set.dim,))),
            "vjp_theta(x, theta, cotangent)",
        )

    def jacobian_x_structure(self, x, theta) -> LowRankJacobian | None:
        """``∂v/∂x`` as diagonal plus low rank (:class:`LowRankJacobian`), or ``None``."""
        return self._jacobian_x_structure(*self._checked(x, theta))

    def equilibrium(self, theta) -> np.ndarray:
        """The exact (unique) Nash equilibrium ``x*(θ)``, computed from the model."""
        return self._equilibrium(self.validate_incentive(theta))

    def best_response(self, x, theta) -> np.ndarray:
        """Every agent's exact best response to the others' strategies in ``x``."""
        return self._best_response(*self._checked(x, theta))

    def unilateral_rewards(self, x, theta, actions) -> np.ndarray:
        """Counterfactual payoffs ``out[i, g] = u^i_θ(actions[i, g], x^{-i})`` of one-dimensional
        agents, shape ``(n_agents, G)`` — the payoff feedback of Hedge and logit learners.
        ``actions[i]`` must lie in agent ``i``'s strategy set."""
        x, theta = self._checked(x, theta)
        actions = as_finite_array(actions, "actions")
        if actions.ndim != 2 or actions.shape[0] != self.n_agents or max(self.strategy_set.agent_sizes) != 1:
            raise ValueError(
                f"actions must have shape (n_agents, G) = ({self.n_agents}, G) for one-dimensional agents, "
                f"got shape {actions.shape}"
            )
        strategy_set = self.strategy_set
        if strategy_set.kind == "box":
            outside = (actions < strategy_set.lower[:, None]) | (actions > strategy_set.upper[:, None])
            if outside.any():
                i, g = (int(index) for index in np.argwhere(outside)[0])
                raise ValueError(f"actions[{i}, {g}] = {actions[i, g]!r} is outside agent {i}'s strategy set")
        return self._unilateral_rewards(x, theta, actions)

    # -- the planner's side (validated) ---------------------------------------------------
    def social_cost(self, x, theta) -> float:
        """The planner's cost ``f(θ, x)``."""
        return _finite(self._social_cost(*self._checked(x, theta)), "social_cost(x, theta)")

    def social_cost_grad_x(self, x, theta) -> np.ndarray:
        """``∇_x f(θ, x)``, shape ``(dim,)``."""
        return _finite(self._social_cost_grad_x(*self._checked(x, theta)), "social_cost_grad_x(x, theta)")

    def social_cost_grad_theta(self, x, theta) -> np.ndarray:
        """``∇_θ f(θ, x)``, shape ``(incentive_set.dim,)``."""
        return _finite(
            self._social_cost_grad_theta(*self._checked(x, theta)), "social_cost_grad_theta(x, theta)"
        )

    @abc.abstractmethod
    def social_optimum(self) -> SocialOptimum:
        """The first-best ``f* = min_{x ∈ X} f(θ, x)`` and a minimiser (exact), or for games
        with an ``incentive`` in the result the second best over Θ (:class:`SocialOptimum`)."""

    def first_best_incentive(self) -> FirstBestIncentive | None:
        """A closed-form incentive implementing the social optimum, or ``None`` for games
        without one."""
        return None

    # -- derived helpers ----------------------------------------------------------------
    def equilibrium_social_cost(self, theta) -> float:
        """``f*(θ) = f(θ, x*(θ))``, the upper-level objective of problem (3.4)."""
        theta = self.validate_incentive(theta)
        return self._social_cost(self._equilibrium(theta), theta)

    def jacobian_x(self, x, theta) -> np.ndarray:
        """Dense ``∂v_θ/∂x`` built column by column from :meth:`jvp_x` (small games only)."""
        x, theta = self._checked(x, theta)
        identity = np.eye(self.strategy_set.dim)
        return np.stack([self._jvp_x(x, theta, column) for column in identity], axis=1)

    def jacobian_theta(self, x, theta) -> np.ndarray:
        """Dense ``∂v_θ/∂θ`` built from :meth:`jvp_theta` (small games only)."""
        x, theta = self._checked(x, theta)
        identity = np.eye(self.incentive_set.dim)
        return np.stack([self._jvp_theta(x, theta, column) for column in identity], axis=1)

    def validate_strategy(self, x, name: str = "x") -> np.ndarray:
        """Return ``x`` as a fresh array, or raise ``ValueError`` if malformed or infeasible
        (outside the strategy set by more than ``1e-7``)."""
        x = as_finite_array(x, name, (self.strategy_set.dim,))
        if not self.strategy_set.contains(x, atol=1e-7):
            raise ValueError(f"{name} is outside the {self.strategy_set.kind} strategy set")
        return x

    def validate_incentive(self, theta, name: str = "theta") -> np.ndarray:
        """Return ``theta`` as a fresh array, or raise ``ValueError`` if malformed or outside Θ."""
        return self.incentive_set.validate(theta, name)

    def _checked(self, x, theta) -> tuple[np.ndarray, np.ndarray]:
        return self.validate_strategy(x), self.validate_incentive(theta)
