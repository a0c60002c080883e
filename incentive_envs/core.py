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
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np

from incentive_envs.validation import as_finite_array

StrategyKind = Literal["box", "simplex", "unconstrained"]


def frozen(array) -> np.ndarray:
    """A read-only float64 copy (parameter arrays of the frozen dataclasses)."""
    array = np.array(array, dtype=np.float64)
    array.setflags(write=False)
    return array


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
    """

    kind: StrategyKind
    agent_sizes: tuple[int, ...]
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("box", "simplex", "unconstrained"):
            raise ValueError(f"kind must be 'box', 'simplex' or 'unconstrained', got {self.kind!r}")
        sizes = tuple(int(size) for size in self.agent_sizes)
        if not sizes or min(sizes) < 1:
            raise ValueError(f"agent_sizes must be positive integers, got {self.agent_sizes!r}")
        object.__setattr__(self, "agent_sizes", sizes)
        dim = sum(sizes)
        if self.kind == "box":
            if self.lower is None or self.upper is None:
                raise ValueError("a box strategy set needs both lower and upper bounds")
            lower = np.broadcast_to(np.asarray(self.lower, dtype=np.float64), (dim,))
            upper = np.broadcast_to(np.asarray(self.upper, dtype=np.float64), (dim,))
            if np.any(np.isnan(lower)) or np.any(np.isnan(upper)) or np.any(lower > upper):
                raise ValueError("box bounds must satisfy lower <= upper without NaN")
            object.__setattr__(self, "lower", frozen(lower))
            object.__setattr__(self, "upper", frozen(upper))
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
            return np.clip(x, self.lower, self.upper)
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
        """Whether ``x`` lies in the set up to ``atol``."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape != (self.dim,) or not np.all(np.isfinite(x)):
            return False
        if self.kind == "box":
            return bool(np.all(x >= self.lower - atol) and np.all(x <= self.upper + atol))
        if self.kind == "simplex":
            return bool(np.all(x >= -atol) and np.allclose(self.block_sum(x), 1.0, atol=atol))
        return True

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

    @property
    def dim(self) -> int:
        return int(self.lower.shape[0])

    def project(self, theta: np.ndarray) -> np.ndarray:
        """Euclidean projection onto Θ (the planner's proximal step in Algorithms 1–2)."""
        return np.clip(theta, self.lower, self.upper)

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


class FirstBestIncentive(NamedTuple):
    """An incentive ``theta`` whose equilibrium is the social optimum; ``unique`` says
    whether it is the only minimiser of ``f*(θ)`` over Θ (so an incentive gap is defined)."""

    theta: np.ndarray
    unique: bool


class OwnPriceIncentive:
    """Mixin for games whose incentive is a per-coordinate linear price in the agents' costs
    and a pure transfer for the planner: ``∂v/∂θ = −I`` and ``∇_θ f = 0``."""

    def jvp_theta(self, x: np.ndarray, theta: np.ndarray, tangent: np.ndarray) -> np.ndarray:
        return -np.asarray(tangent, dtype=np.float64)

    def vjp_theta(self, x: np.ndarray, theta: np.ndarray, cotangent: np.ndarray) -> np.ndarray:
        return -np.asarray(cotangent, dtype=np.float64)

    def social_cost_grad_theta(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        return np.zeros(self.incentive_set.dim)


class SocialOptimum(NamedTuple):
    """The first-best outcome: ``value = f* = min_x f(θ, x)`` attained at ``strategy``."""

    value: float
    strategy: np.ndarray


class IncentiveGame(abc.ABC):
    """The model of a game with planner-controlled incentives (SPEC §1).

    Subclasses implement the abstract methods with vectorised numpy; everything else here
    is derived from them. All arrays are flat float64: ``x`` has shape
    ``(strategy_set.dim,)`` and ``θ`` shape ``(incentive_set.dim,)``.
    """

    strategy_set: StrategySet
    incentive_set: IncentiveSet

    @property
    def n_agents(self) -> int:
        return self.strategy_set.n_agents

    # -- the agents' side ---------------------------------------------------------------
    @abc.abstractmethod
    def rewards(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Each agent's reward ``u^i_θ(x)`` including incentives, shape ``(n_agents,)``."""

    @abc.abstractmethod
    def pseudo_gradient(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """``v_θ(x) = (∇_{x^i} u^i_θ(x))_i``, shape ``(dim,)`` (paper eq. 3.3)."""

    @abc.abstractmethod
    def jvp_x(self, x: np.ndarray, theta: np.ndarray, tangent: np.ndarray) -> np.ndarray:
        """Jacobian-vector product ``[∂v_θ/∂x](x) · tangent``."""

    @abc.abstractmethod
    def vjp_x(self, x: np.ndarray, theta: np.ndarray, cotangent: np.ndarray) -> np.ndarray:
        """Vector-Jacobian product ``[∂v_θ/∂x](x)^T · cotangent``."""

    @abc.abstractmethod
    def jvp_theta(self, x: np.ndarray, theta: np.ndarray, tangent: np.ndarray) -> np.ndarray:
        """``[∂v_θ/∂θ](x) · tangent`` (tangent of shape ``(incentive_set.dim,)``)."""

    @abc.abstractmethod
    def vjp_theta(self, x: np.ndarray, theta: np.ndarray, cotangent: np.ndarray) -> np.ndarray:
        """``[∂v_θ/∂θ](x)^T · cotangent``, shape ``(incentive_set.dim,)``."""

    @abc.abstractmethod
    def equilibrium(self, theta: np.ndarray) -> np.ndarray:
        """The exact (unique) Nash equilibrium ``x*(θ)``, computed from the model."""

    def best_response(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Every agent's exact best response to the others' strategies in ``x``."""
        raise NotImplementedError(f"{type(self).__name__} has no exact best response")

    def unilateral_rewards(self, x: np.ndarray, theta: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Counterfactual payoffs ``out[i, g] = u^i_θ(actions[i, g], x^{-i})`` of one-dimensional
        agents, shape ``(n_agents, G)`` — the payoff feedback of Hedge and logit learners."""
        raise NotImplementedError(f"{type(self).__name__} has no counterfactual payoffs")

    # -- the planner's side -------------------------------------------------------------
    @abc.abstractmethod
    def social_cost(self, x: np.ndarray, theta: np.ndarray) -> float:
        """The planner's cost ``f(θ, x)``."""

    @abc.abstractmethod
    def social_cost_grad_x(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """``∇_x f(θ, x)``, shape ``(dim,)``."""

    @abc.abstractmethod
    def social_cost_grad_theta(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """``∇_θ f(θ, x)``, shape ``(incentive_set.dim,)``."""

    @abc.abstractmethod
    def social_optimum(self) -> SocialOptimum:
        """The first-best ``f* = min_{x ∈ X} f(θ, x)`` and a minimiser (exact)."""

    def first_best_incentive(self) -> FirstBestIncentive:
        """A closed-form incentive implementing the social optimum, for games that have one."""
        raise NotImplementedError(f"{type(self).__name__} has no closed-form first-best incentive")

    # -- derived helpers ----------------------------------------------------------------
    def equilibrium_social_cost(self, theta: np.ndarray) -> float:
        """``f*(θ) = f(θ, x*(θ))``, the upper-level objective of problem (3.4)."""
        return self.social_cost(self.equilibrium(theta), theta)

    def jacobian_x(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Dense ``∂v_θ/∂x`` built column by column from :meth:`jvp_x` (small games only)."""
        identity = np.eye(self.strategy_set.dim)
        return np.stack([self.jvp_x(x, theta, column) for column in identity], axis=1)

    def jacobian_theta(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Dense ``∂v_θ/∂θ`` built from :meth:`jvp_theta` (small games only)."""
        identity = np.eye(self.incentive_set.dim)
        return np.stack([self.jvp_theta(x, theta, column) for column in identity], axis=1)

    def validate_strategy(self, x, name: str = "x") -> np.ndarray:
        """Return ``x`` as an array, or raise ``ValueError`` if malformed or infeasible."""
        x = as_finite_array(x, name, (self.strategy_set.dim,))
        if not self.strategy_set.contains(x, atol=1e-7):
            raise ValueError(f"{name} is outside the {self.strategy_set.kind} strategy set")
        return x

    def validate_incentive(self, theta, name: str = "theta") -> np.ndarray:
        return self.incentive_set.validate(theta, name)
