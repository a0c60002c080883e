"""Fast-timescale learners: mirror descent (Euclidean and entropic), best response, logit
choice and Hedge.

Every learner updates the flat joint strategy ``x`` of all agents at once from the feedback
named by its ``feedback`` attribute (``"gradient"``: the pseudo-gradient ``v_θ(x)``, possibly
noisy; ``"best_response"``: the agents' exact best responses; ``"payoffs"``: counterfactual
payoffs of every action of a grid). The public :meth:`Learner.step` validates its inputs;
the experiment engine calls the unchecked ``_step`` in its inner loop. The drivers in
:mod:`agents.play` turn learners into iterators, over arrays or through the suite's envs.

*Differentiable* learners (``differentiable = True``: the two mirror-descent learners) own
their fixed-point map ``h_θ`` — its value, vector–Jacobian products and adjoint system
(:mod:`agents.fixed_point`) — so that implicit-gradient and unrolled planners differentiate
whatever learner they are given.
"""

from __future__ import annotations

import numpy as np

from agents.fixed_point import (
    AdjointSystem,
    entropic_adjoint_system,
    entropic_map,
    entropic_map_vjp,
    projected_adjoint_system,
    projected_map,
    projected_map_vjp,
)
from agents.schedules import PowerSchedule, as_schedule
from incentive_envs.core import IncentiveGame, StrategySet, clip_into
from incentive_envs.validation import as_finite_array, check_iteration, check_scalar


class Learner:
    """Base class: a learner of the agents of one strategy set.

    Subclasses set ``feedback`` and implement ``_step``; stateful learners also override
    :meth:`reset`, :meth:`state_dict` and :meth:`load_state_dict`.
    """

    feedback = "gradient"
    differentiable = False

    def __init__(self, strategy_set: StrategySet):
        if not isinstance(strategy_set, StrategySet):
            raise ValueError(f"strategy_set must be a StrategySet, got {type(strategy_set).__name__}")
        self.strategy_set = strategy_set

    def feedback_shape(self) -> tuple[int, ...]:
        """The shape of the feedback :meth:`step` expects."""
        return (self.strategy_set.dim,)

    def step(self, x, k: int, feedback) -> np.ndarray:
        """One update of every agent: ``x_{k+1}`` from ``x_k``, the iteration ``k >= 0`` and the
        feedback (validated: shapes, finiteness, ``x`` in the strategy set, best responses too;
        an update that overflows float64 raises ``ValueError`` instead of returning inf, NaN or
        an infeasible point)."""
        x = as_finite_array(x, "x", (self.strategy_set.dim,))
        if not self.strategy_set.contains(x, atol=1e-7):
            raise ValueError(f"x is outside the {self.strategy_set.kind} strategy set")
        k = check_iteration(k)
        feedback = as_finite_array(feedback, "feedback", self.feedback_shape())
        if self.feedback == "best_response" and not self.strategy_set.contains(feedback, atol=1e-7):
            raise ValueError(
                f"feedback (best responses) is outside the {self.strategy_set.kind} strategy set"
            )
        x_next = self._step(x, k, feedback)
        if not self.strategy_set.contains(x_next, atol=1e-7):  # non-finite, or projected at a lost precision
            raise ValueError(
                f"the update of {self!r} overflowed float64: its step times the feedback is too large"
            )
        return x_next

    def _step(self, x: np.ndarray, k: int, feedback: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def reset(self) -> None:
        """Forget any accumulated state (none by default)."""

    def state_dict(self) -> dict:
        """JSON-serialisable state (none by default), for checkpoints."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        if state != {}:
            raise ValueError(f"{type(self).__name__} has no state to load, got {state!r}"[:200])


class DifferentiableLearner(Learner):
    """A learner whose update is a fixed-point map ``x_{k+1} = h_θ(x_k)`` of the game's
    feedback, with the derivatives implicit and unrolled differentiation need."""

    differentiable = True

    def fixed_point_map(self, game: IncentiveGame, x: np.ndarray, theta: np.ndarray, k: int) -> np.ndarray:
        """``h_θ(x)`` with this learner's step of iteration ``k`` (noise-free feedback)."""
        raise NotImplementedError

    def map_vjp(
        self, game: IncentiveGame, x: np.ndarray, theta: np.ndarray, k: int, cotangent: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(J_xᵀ w, J_θᵀ w)`` of ``h_θ`` at ``x``."""
        raise NotImplementedError

    def adjoint_system(
        self, game: IncentiveGame, x: np.ndarray, theta: np.ndarray, k: int, grad_x: np.ndarray
    ) -> AdjointSystem:
        """``(I − J_x)ᵀ w = ∇_x f`` in the solver's coordinates (:class:`~agents.fixed_point.AdjointSystem`)."""
        raise NotImplementedError

    def step_vjp(
        self, game: IncentiveGame, x: np.ndarray, theta: np.ndarray, k: int, cotangent: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(J_xᵀ w, J_θᵀ w)`` of the update actually taken at iteration ``k`` (what unrolled
        differentiation backpropagates through); the fixed-point map's unless overridden."""
        return self.map_vjp(game, x, theta, k, cotangent)


class EuclideanMirrorDescent(DifferentiableLearner):
    """Projected gradient play, paper eq. (4.1) with ``ψ = ½‖·‖²``:
    ``x_{k+1} = Proj_X(x_k + β_k v̂_k)``.

    Its fixed-point map is the projected-gradient map of Algorithm 1
    (:func:`agents.fixed_point.projected_map`).

    Parameters
    ----------
    strategy_set : StrategySet
        Any kind (boxes clip, simplices use the sorting-based Euclidean projection).
    step_size : PowerSchedule or float
        ``β_k``.
    """

    def __init__(self, strategy_set: StrategySet, step_size: PowerSchedule | float):
        super().__init__(strategy_set)
        self.step_size = as_schedule(step_size, "step_size")

    def _step(self, x: np.ndarray, k: int, feedback: np.ndarray) -> np.ndarray:
        if self.strategy_set.kind != "box":
            return self.strategy_set.project(x + self.step_size(k) * feedback)
        step = np.multiply(feedback, self.step_size(k))  # in place: one array per step
        step += x
        return clip_into(step, self.strategy_set.bounds)

    def fixed_point_map(self, game, x, theta, k):
        return projected_map(game, x, theta, self.step_size(k))

    def map_vjp(self, game, x, theta, k, cotangent):
        return projected_map_vjp(game, x, theta, self.step_size(k), cotangent)

    def adjoint_system(self, game, x, theta, k, grad_x):
        return projected_adjoint_system(game, x, theta, self.step_size(k), grad_x)

    def __repr__(self) -> str:
        return f"EuclideanMirrorDescent(step_size={self.step_size})"


class EntropicMirrorDescent(DifferentiableLearner):
    """Exponentiated gradient on simplices with the paper's mixing step (Algorithm 2):

    ``x_{k+1}^i ∝ x̃_k^i · exp(β_k v̂_k^i)`` (Remark 4.3, rewards convention), then
    ``x̃_{k+1}^i = (1 − ν_k) x_{k+1}^i + ν_k 1/d^i`` (eq. 4.6).

    Its fixed-point map is the entropic map of Remark 4.3 without mixing
    (:func:`agents.fixed_point.entropic_map`): the mixing step is the algorithm's device to
    stay off the boundary, not part of the equilibrium condition.

    Parameters
    ----------
    strategy_set : StrategySet
        Must be of kind ``"simplex"``.
    step_size : PowerSchedule or float
        ``β_k``.
    mixing : PowerSchedule or float
        ``ν_k ∈ [0, 1)``; 0 disables the mixing step (setting D of Figure 1).
    """

    def __init__(
        self,
        strategy_set: StrategySet,
        step_size: PowerSchedule | float,
        mixing: PowerSchedule | float = 0.0,
    ):
        super().__init__(strategy_set)
        if strategy_set.kind != "simplex":
            raise ValueError(
                f"strategy_set must be a simplex for entropic mirror descent, got {strategy_set.kind!r}"
            )
        self.step_size = as_schedule(step_size, "step_size")
        self.mixing = as_schedule(mixing, "mixing")
        if self.mixing(0) >= 1.0:
            raise ValueError(f"mixing must stay below 1, got nu_0 = {self.mixing(0)!r}")
        self._uniform = strategy_set.uniform_point()

    def _step(self, x: np.ndarray, k: int, feedback: np.ndarray) -> np.ndarray:
        updated = self.strategy_set.exponentiated(x, self.step_size(k) * feedback)
        mixing = self.mixing(k)
        return (1.0 - mixing) * updated + mixing * self._uniform

    def fixed_point_map(self, game, x, theta, k):
        return entropic_map(game, x, theta, self.step_size(k))

    def map_vjp(self, game, x, theta, k, cotangent):
        return entropic_map_vjp(game, x, theta, self.step_size(k), cotangent)

    def adjoint_system(self, game, x, theta, k, grad_x):
        return entropic_adjoint_system(game, x, theta, self.step_size(k), grad_x)

    def step_vjp(self, game, x, theta, k, cotangent):
        """The update mixes ``(1 − ν_k) h_θ(x) + ν_k/d``: its derivatives are ``(1 − ν_k)`` times the map's."""
        keep = 1.0 - self.mixing(k)
        grad_x, grad_theta = self.map_vjp(game, x, theta, k, cotangent)
        return keep * grad_x, keep * grad_theta

    def __repr__(self) -> str:
        return f"EntropicMirrorDescent(step_size={self.step_size}, mixing={self.mixing})"


class BestResponse(Learner):
    """Inertial exact best response: ``x_{k+1} = x_k + β_k (BR_θ(x_k) − x_k)``.

    ``β_k = 1`` is simultaneous best response; smaller steps add the inertia that makes it
    converge in games (like Cournot with many firms) where the pure dynamics cycle. It
    uses the game model (each agent knows its own reward function).

    Parameters
    ----------
    strategy_set : StrategySet
    step_size : PowerSchedule or float
        ``β_k ∈ [0, 1]``.
    """

    feedback = "best_response"

    def __init__(self, strategy_set: StrategySet, step_size: PowerSchedule | float = 1.0):
        super().__init__(strategy_set)
        self.step_size = as_schedule(step_size, "step_size")
        if self.step_size(0) > 1.0:
            raise ValueError(
                f"step_size must be at most 1 for best response, got beta_0 = {self.step_size(0)!r}"
            )

    def _step(self, x: np.ndarray, k: int, feedback: np.ndarray) -> np.ndarray:
        return x + self.step_size(k) * (feedback - x)

    def __repr__(self) -> str:
        return f"BestResponse(step_size={self.step_size})"


def equilibrium_map_learner(strategy_set: StrategySet) -> DifferentiableLearner:
    """A differentiable learner whose fixed points are the game's equilibria, for exact
    hypergradients at an equilibrium (where the result does not depend on the map): projected
    gradient play with unit step on boxes and unconstrained sets, the entropic map on simplices."""
    if strategy_set.kind == "simplex":
        return EntropicMirrorDescent(strategy_set, 1.0)
    return EuclideanMirrorDescent(strategy_set, 1.0)


def jacobian_norm(game, x: np.ndarray, theta: np.ndarray, iterations: int = 100) -> float:
    """``‖∂v_θ/∂x‖_2`` at ``(x, θ)`` by power iteration on ``Jᵀ J`` (products only, deterministic;
    ``x`` and ``θ`` are validated).

    Projected gradient play on a game with a symmetric negative-definite Jacobian (potential
    games such as Cournot) is stable for steps ``β < 2 / ‖∂v/∂x‖_2``.
    """
    x, theta = game.validate_strategy(x), game.validate_incentive(theta)
    vector = np.linspace(1.0, 2.0, game.strategy_set.dim)
    norm = 0.0
    for _ in range(iterations):
        vector = vector / np.linalg.norm(vector)
        image = game._vjp_x(x, theta, game._jvp_x(x, theta, vector))
        estimate = float(np.sqrt(np.linalg.norm(image)))
        if abs(estimate - norm) <= 1e-10 * max(estimate, 1.0):
            return estimate
        vector, norm = image, estimate
    return norm


def _softmax_rows(logits: np.ndarray) -> np.ndarray:
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    return weights / weights.sum(axis=1, keepdims=True)


class LogitBestResponse(Learner):
    """Smoothed (logit) best response on a discretised action set:
    ``x_{k+1} = x_k + β_k (Σ_a a · softmax(u^i(a, x_k^{-i}) / η) − x_k)``.

    The logit choice is the best response of an agent with entropy-regularised (quantal)
    rationality of temperature ``η``; as ``η → 0`` it tends to the exact best response
    (up to the grid resolution).

    Parameters
    ----------
    strategy_set : StrategySet
        One-dimensional finite boxes per agent.
    temperature : float
        ``η > 0`` in payoff units.
    step_size : PowerSchedule or float
        ``β_k ∈ (0, 1]`` (inertia, as for :class:`BestResponse`).
    grid_size : int
        Actions per agent.
    """

    feedback = "payoffs"

    def __init__(
        self,
        strategy_set: StrategySet,
        temperature: float = 0.1,
        step_size: PowerSchedule | float = 0.1,
        grid_size: int = 201,
    ):
        super().__init__(strategy_set)
        self.actions = strategy_set.action_grid(grid_size)
        self.temperature = check_scalar(temperature, "temperature", low=0.0, low_inclusive=False)
        self.step_size = as_schedule(step_size, "step_size")
        if self.step_size(0) > 1.0:
            raise ValueError(f"step_size must be at most 1, got beta_0 = {self.step_size(0)!r}")

    def feedback_shape(self) -> tuple[int, ...]:
        return self.actions.shape

    def _step(self, x: np.ndarray, k: int, feedback: np.ndarray) -> np.ndarray:
        # shifted by each row's best payoff before dividing: no overflow for any finite payoffs
        scores = (feedback - feedback.max(axis=1, keepdims=True)) / self.temperature
        choice = np.sum(_softmax_rows(scores) * self.actions, axis=1)
        return x + self.step_size(k) * (choice - x)

    def __repr__(self) -> str:
        return f"LogitBestResponse(temperature={self.temperature}, step_size={self.step_size})"


class Hedge(Learner):
    """Hedge (multiplicative weights / exponential weights) over a discretised action set,
    from full-information payoff feedback: ``w^i_{k+1}(a) ∝ w^i_k(a) exp(η_k u^i(a, x_k^{-i}))``.

    A no-regret learner that never sees a gradient. Its reported strategy is the expected
    action ``Σ_a a w^i(a)`` (the payoff feedback is evaluated at the others' expected
    actions, exact for games whose payoffs are linear in the others' actions, such as Cournot
    and the aggregative game). Unlike the other learners it keeps state (the log-weights):
    call :meth:`reset` before reusing it.

    Parameters
    ----------
    strategy_set : StrategySet
        One-dimensional finite boxes per agent.
    learning_rate : PowerSchedule or float
        ``η_k``.
    grid_size : int
        Actions per agent.
    """

    feedback = "payoffs"

    def __init__(
        self, strategy_set: StrategySet, learning_rate: PowerSchedule | float = 0.1, grid_size: int = 201
    ):
        super().__init__(strategy_set)
        self.actions = strategy_set.action_grid(grid_size)
        self.learning_rate = as_schedule(learning_rate, "learning_rate")
        self.reset()

    def reset(self) -> None:
        """Forget the accumulated payoffs (uniform weights)."""
        self.log_weights = np.zeros_like(self.actions)

    def feedback_shape(self) -> tuple[int, ...]:
        return self.actions.shape

    def _step(self, x: np.ndarray, k: int, feedback: np.ndarray) -> np.ndarray:
        log_weights = self.log_weights + self.learning_rate(k) * feedback
        log_weights -= log_weights.max(axis=1, keepdims=True)
        strategy = np.sum(_softmax_rows(log_weights) * self.actions, axis=1)
        if not np.all(np.isfinite(strategy)):  # checked before the weights change
            raise ValueError(
                f"learning_rate × feedback overflowed float64 (learning rate {self.learning_rate(k)!r}, "
                f"payoffs up to {float(np.max(np.abs(feedback))):.3g})"
            )
        self.log_weights = log_weights
        return strategy

    def state_dict(self) -> dict:
        """The log-weights (``(n_agents, G)``)."""
        return {"log_weights": self.log_weights.tolist()}

    def load_state_dict(self, state: dict) -> None:
        if not isinstance(state, dict) or set(state) != {"log_weights"}:
            raise ValueError(f"state must be a dict with the key 'log_weights', got {state!r}"[:200])
        log_weights = as_finite_array(state["log_weights"], "state['log_weights']", self.actions.shape)
        self.log_weights = log_weights

    def __repr__(self) -> str:
        return f"Hedge(learning_rate={self.learning_rate}, grid_size={self.actions.shape[1]})"
