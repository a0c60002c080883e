"""Fast-timescale learners: mirror descent (Euclidean and entropic) and best response.

Every learner is a small object with one method, ``step(x, k, feedback) -> x_next``: a pure
update of the flat joint strategy ``x`` from the feedback named by its ``feedback`` attribute
(``"gradient"``: the pseudo-gradient ``v_θ(x)``, possibly noisy; ``"best_response"``: the
agents' exact best responses). The drivers in :mod:`agents.play` turn learners into
iterators, over arrays (the fast path) or through any of the suite's PettingZoo envs.
"""

from __future__ import annotations

import numpy as np

from agents.schedules import PowerSchedule, as_schedule
from incentive_envs.core import StrategySet
from incentive_envs.validation import check_scalar


class EuclideanMirrorDescent:
    """Projected gradient play, paper eq. (4.1) with ``ψ = ½‖·‖²``:
    ``x_{k+1} = Proj_X(x_k + β_k v̂_k)``.

    Parameters
    ----------
    strategy_set : StrategySet
        Any kind (boxes clip, simplices use the sorting-based Euclidean projection).
    step_size : PowerSchedule or float
        ``β_k``.
    """

    feedback = "gradient"

    def __init__(self, strategy_set: StrategySet, step_size: PowerSchedule | float):
        self.strategy_set = strategy_set
        self.step_size = as_schedule(step_size, "step_size")

    def step(self, x: np.ndarray, k: int, feedback: np.ndarray) -> np.ndarray:
        return self.strategy_set.project(x + self.step_size(k) * feedback)

    def __repr__(self) -> str:
        return f"EuclideanMirrorDescent(step_size={self.step_size})"


class EntropicMirrorDescent:
    """Exponentiated gradient on simplices with the paper's mixing step (Algorithm 2):

    ``x_{k+1}^i ∝ x̃_k^i · exp(β_k v̂_k^i)`` (Remark 4.3, rewards convention), then
    ``x̃_{k+1}^i = (1 − ν_k) x_{k+1}^i + ν_k 1/d^i`` (eq. 4.6).

    Parameters
    ----------
    strategy_set : StrategySet
        Must be of kind ``"simplex"``.
    step_size : PowerSchedule or float
        ``β_k``.
    mixing : PowerSchedule or float
        ``ν_k ∈ [0, 1)``; 0 disables the mixing step (setting D of Figure 1).
    """

    feedback = "gradient"

    def __init__(
        self,
        strategy_set: StrategySet,
        step_size: PowerSchedule | float,
        mixing: PowerSchedule | float = 0.0,
    ):
        if strategy_set.kind != "simplex":
            raise ValueError(
                f"strategy_set must be a simplex for entropic mirror descent, got {strategy_set.kind!r}"
            )
        self.strategy_set = strategy_set
        self.step_size = as_schedule(step_size, "step_size")
        self.mixing = as_schedule(mixing, "mixing")
        if self.mixing(0) >= 1.0:
            raise ValueError(f"mixing must stay below 1, got nu_0 = {self.mixing(0)!r}")
        self._uniform = strategy_set.uniform_point()

    def step(self, x: np.ndarray, k: int, feedback: np.ndarray) -> np.ndarray:
        updated = self.strategy_set.exponentiated(x, self.step_size(k) * feedback)
        mixing = self.mixing(k)
        return (1.0 - mixing) * updated + mixing * self._uniform

    def __repr__(self) -> str:
        return f"EntropicMirrorDescent(step_size={self.step_size}, mixing={self.mixing})"


class BestResponse:
    """Inertial exact best response: ``x_{k+1} = x_k + β_k (BR_θ(x_k) − x_k)``.

    ``β_k = 1`` is simultaneous best response; smaller steps add the inertia that makes it
    converge in games (like Cournot with many firms) where the pure dynamics cycle. It
    uses the game model (each agent knows its own reward function).

    Parameters
    ----------
    step_size : PowerSchedule or float
        ``β_k ∈ [0, 1]``.
    """

    feedback = "best_response"

    def __init__(self, step_size: PowerSchedule | float = 1.0):
        self.step_size = as_schedule(step_size, "step_size")
        if self.step_size(0) > 1.0:
            raise ValueError(
                f"step_size must be at most 1 for best response, got beta_0 = {self.step_size(0)!r}"
            )

    def step(self, x: np.ndarray, k: int, feedback: np.ndarray) -> np.ndarray:
        return x + self.step_size(k) * (feedback - x)

    def __repr__(self) -> str:
        return f"BestResponse(step_size={self.step_size})"


def jacobian_norm(game, x: np.ndarray, theta: np.ndarray, iterations: int = 100) -> float:
    """``‖∂v_θ/∂x‖_2`` at ``(x, θ)`` by power iteration on ``Jᵀ J`` (products only, deterministic).

    Projected gradient play on a game with a symmetric negative-definite Jacobian (potential
    games such as Cournot) is stable for steps ``β < 2 / ‖∂v/∂x‖_2``.
    """
    vector = np.linspace(1.0, 2.0, game.strategy_set.dim)
    norm = 0.0
    for _ in range(iterations):
        vector = vector / np.linalg.norm(vector)
        image = game.vjp_x(x, theta, game.jvp_x(x, theta, vector))
        estimate = float(np.sqrt(np.linalg.norm(image)))
        if abs(estimate - norm) <= 1e-10 * max(estimate, 1.0):
            return estimate
        vector, norm = image, estimate
    return norm


def _action_grid(strategy_set: StrategySet, grid_size: int) -> np.ndarray:
    """``(n_agents, G)`` evenly spaced actions spanning each one-dimensional agent's box."""
    if strategy_set.kind != "box" or max(strategy_set.agent_sizes) != 1:
        raise ValueError("payoff-based learners need one-dimensional box strategies per agent")
    if not (np.all(np.isfinite(strategy_set.lower)) and np.all(np.isfinite(strategy_set.upper))):
        raise ValueError("payoff-based learners need finite strategy bounds to discretise")
    if isinstance(grid_size, bool) or not isinstance(grid_size, (int, np.integer)) or grid_size < 2:
        raise ValueError(f"grid_size must be an integer >= 2, got {grid_size!r}")
    fractions = np.linspace(0.0, 1.0, int(grid_size))
    return (
        strategy_set.lower[:, None] + fractions[None, :] * (strategy_set.upper - strategy_set.lower)[:, None]
    )


def _softmax_rows(logits: np.ndarray) -> np.ndarray:
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    return weights / weights.sum(axis=1, keepdims=True)


class LogitBestResponse:
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
        self.actions = _action_grid(strategy_set, grid_size)
        self.temperature = check_scalar(temperature, "temperature", low=0.0, low_inclusive=False)
        self.step_size = as_schedule(step_size, "step_size")
        if self.step_size(0) > 1.0:
            raise ValueError(f"step_size must be at most 1, got beta_0 = {self.step_size(0)!r}")

    def step(self, x: np.ndarray, k: int, feedback: np.ndarray) -> np.ndarray:
        choice = np.sum(_softmax_rows(feedback / self.temperature) * self.actions, axis=1)
        return x + self.step_size(k) * (choice - x)

    def __repr__(self) -> str:
        return f"LogitBestResponse(temperature={self.temperature}, step_size={self.step_size})"


class Hedge:
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
        self.actions = _action_grid(strategy_set, grid_size)
        self.learning_rate = as_schedule(learning_rate, "learning_rate")
        self.reset()

    def reset(self) -> None:
        """Forget the accumulated payoffs (uniform weights)."""
        self.log_weights = np.zeros_like(self.actions)

    def step(self, x: np.ndarray, k: int, feedback: np.ndarray) -> np.ndarray:
        self.log_weights += self.learning_rate(k) * feedback
        self.log_weights -= self.log_weights.max(axis=1, keepdims=True)
        return np.sum(_softmax_rows(self.log_weights) * self.actions, axis=1)

    def __repr__(self) -> str:
        return f"Hedge(learning_rate={self.learning_rate}, grid_size={self.actions.shape[1]})"
