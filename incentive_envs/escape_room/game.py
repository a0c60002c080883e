"""The rules of the Escape Room game ER(N, M) (Yang et al. 2021, "Adaptive incentive design
with multi-agent meta-gradient reinforcement learning"), batched in pure NumPy.

``N`` agents move between three positions: the lever (0), the start (1) and the door (2).
In every step each agent picks a target position (its action) and moves there. The door is
open in a step if at least ``M`` agents pick the lever in that step. An agent's reward is

* ``+10`` (:data:`DOOR_REWARD`) for picking the door while the door is open,
* ``0`` for staying where it is (action equal to its position) otherwise,
* ``-1`` (``-MOVE_COST``) for any other move, including a move to the closed door.

The episode ends as soon as the door is open and at least one agent picked the door.
:func:`step_batch` is the single implementation of these rules: the PettingZoo env steps
through it, and :class:`EscapeRoomTask` exposes it as an
:class:`~incentive_envs.episodic.EpisodicTask` for batched learners and designers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from incentive_envs.episodic import MAX_BATCH, check_generator
from incentive_envs.validation import check_int, check_positive_int

LEVER, START, DOOR = 0, 1, 2
"""The three positions; an action is the target position."""

N_POSITIONS = 3
DOOR_REWARD = 10.0
"""Reward for picking the door while it is open."""

MOVE_COST = 1.0
"""Cost of a move that does not earn the door reward."""


MAX_AGENTS = 10_000
"""Largest accepted ``N`` (one-hot states have ``3N`` entries per agent: ``O(N²)`` memory)."""


def check_params(n_agents, threshold) -> tuple[int, int]:
    """Validate ``(N, M)``: integers (``bool`` rejected) with ``2 <= N <= MAX_AGENTS`` and
    ``1 <= M <= N - 1``.

    Returns
    -------
    tuple of int
        ``(n_agents, threshold)`` as Python integers.

    Raises
    ------
    ValueError
        Naming the offending argument and its value.
    """
    n_agents = check_int(n_agents, "n_agents", high=MAX_AGENTS)
    threshold = check_int(threshold, "threshold")
    if n_agents < 2:
        raise ValueError(f"n_agents must be >= 2 (the door needs M >= 1 lever pullers), got {n_agents!r}")
    if not 1 <= threshold <= n_agents - 1:
        raise ValueError(
            f"threshold must satisfy 1 <= threshold <= n_agents - 1 = {n_agents - 1}, got {threshold!r}"
        )
    return n_agents, threshold


def optimum(n_agents: int, threshold: int) -> float:
    """The largest total environment reward of one episode of ER(N, M): ``10 (N − M) − M``.

    Derivation. An agent earns ``+10`` only by picking the door while it is open, and the
    episode ends in the first step in which that happens, so each agent earns ``+10`` at
    most once, in the last step. In that step at least ``M`` agents pick the lever, so at
    most ``N − M`` agents earn ``+10``. Every lever picker starts at position 1, so it
    moved to the lever at some step and paid ``−1`` at least once. Hence the total is at
    most ``10 (N − M) − M``; an episode that never opens the door totals at most 0, which
    is less since ``N − M >= 1``. The bound is attained in one step: ``M`` agents pick the
    lever (``−1`` each) and the other ``N − M`` pick the door (``+10`` each).
    Example: ER(2, 1) gives ``10 − 1 = 9``; ER(5, 2) gives ``30 − 2 = 28``.

    Parameters
    ----------
    n_agents, threshold : int
        ``N`` and ``M``, validated by :func:`check_params`.
    """
    n_agents, threshold = check_params(n_agents, threshold)
    return DOOR_REWARD * (n_agents - threshold) - MOVE_COST * threshold


def one_hot(positions: np.ndarray) -> np.ndarray:
    """One-hot encoding of integer positions: shape ``(..., N)`` to ``(..., N * 3)`` float32,
    agent ``i``'s block at ``[3i, 3i + 3)``."""
    positions = np.asarray(positions)
    encoded = np.zeros((*positions.shape, N_POSITIONS), dtype=np.float32)
    np.put_along_axis(encoded, positions[..., None], 1.0, axis=-1)
    return encoded.reshape(*positions.shape[:-1], -1)


def _as_position_array(value, name: str) -> np.ndarray:
    array = np.asarray(value)
    if array.ndim != 2:
        raise ValueError(f"{name} must have shape (batch, n_agents), got shape {array.shape}")
    if array.dtype.kind not in "iu":
        raise ValueError(f"{name} must have an integer dtype, got {array.dtype}")
    outside = (array < 0) | (array >= N_POSITIONS)
    if np.any(outside):
        index = tuple(int(i) for i in np.argwhere(outside)[0])
        raise ValueError(f"{name}{list(index)} = {int(array[index])} is not a position in {{0, 1, 2}}")
    return array


def step_batch(positions, actions, threshold: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One step of ``B`` independent ER(N, M) games.

    Parameters
    ----------
    positions : array_like of int, shape (B, N)
        Each agent's position before the step (0 lever, 1 start, 2 door).
    actions : array_like of int, shape (B, N)
        Each agent's target position.
    threshold : int
        ``M``: lever pickers needed to open the door, ``1 <= M <= N - 1``.

    Returns
    -------
    new_positions : ndarray of int64, shape (B, N)
        Equal to ``actions``: every agent reaches its target.
    env_rewards : ndarray of float64, shape (B, N)
        The rewards of the module docstring (without incentives).
    door_open : ndarray of bool, shape (B,)
        Whether at least ``M`` agents picked the lever.
    done : ndarray of bool, shape (B,)
        Whether the game ended: the door is open and some agent picked the door.

    Raises
    ------
    ValueError
        On bad shapes, non-integer dtypes, values outside ``{0, 1, 2}`` or a bad ``M``.
    """
    positions = _as_position_array(positions, "positions")
    actions = _as_position_array(actions, "actions")
    if actions.shape != positions.shape:
        raise ValueError(f"actions must have the shape of positions {positions.shape}, got {actions.shape}")
    _, threshold = check_params(positions.shape[1], threshold)
    door_open = np.count_nonzero(actions == LEVER, axis=1) >= threshold
    at_open_door = (actions == DOOR) & door_open[:, None]
    env_rewards = np.where(at_open_door, DOOR_REWARD, np.where(actions == positions, 0.0, -MOVE_COST))
    done = np.any(at_open_door, axis=1)
    return actions.astype(np.int64), env_rewards, door_open, done


@dataclass(frozen=True)
class EscapeRoomTask:
    """ER(N, M) as an :class:`~incentive_envs.episodic.EpisodicTask`.

    The state of ``B`` games is the positions array ``(B, N)`` (int64, everyone at the start
    after :meth:`reset`). Every agent observes the one-hot positions of all agents
    (``3N`` entries, agent ``i``'s block at ``[3i, 3i + 3)``); the designer's features are
    ``[one-hot positions, one-hot joint action]`` (``6N``); hand-made bonuses pay for every
    lever pull (the prosocial event); the reward scale is ``|optimum(N, M)|``. The game is deterministic: ``rng`` is
    accepted and not drawn from.

    Parameters
    ----------
    n_agents, threshold : int
        ``N`` and ``M`` (:func:`check_params`).
    max_steps : int
        Steps per episode before truncation.
    """

    n_agents: int
    threshold: int
    max_steps: int = 5

    n_actions: ClassVar[int] = N_POSITIONS
    prosocial_action: ClassVar[int] = LEVER

    def __post_init__(self) -> None:
        n_agents, threshold = check_params(self.n_agents, self.threshold)
        object.__setattr__(self, "n_agents", n_agents)
        object.__setattr__(self, "threshold", threshold)
        object.__setattr__(self, "max_steps", check_positive_int(self.max_steps, "max_steps"))

    @property
    def observation_shape(self) -> tuple[int, ...]:
        return (N_POSITIONS * self.n_agents,)

    @property
    def incentive_feature_size(self) -> int:
        return 2 * N_POSITIONS * self.n_agents

    @property
    def reward_scale(self) -> float:
        return abs(self.optimum)

    @property
    def optimum(self) -> float:
        """The largest collective environment return of an episode, ``10 (N − M) − M``
        (:func:`optimum`): the ground truth of the engine's optimality gap."""
        return optimum(self.n_agents, self.threshold)

    def reset(self, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        """``B`` games with every agent at the start."""
        check_generator(rng)
        return np.full(
            (check_positive_int(batch_size, "batch_size", MAX_BATCH), self.n_agents), START, dtype=np.int64
        )

    def observe(self, state: np.ndarray) -> np.ndarray:
        """The one-hot positions, the same for every agent: ``(B, N, 3N)`` float32."""
        encoded = one_hot(state)
        return np.broadcast_to(encoded[:, None], (encoded.shape[0], self.n_agents, encoded.shape[1])).copy()

    def step(
        self, state: np.ndarray, actions: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:func:`step_batch`: ``(positions, env_rewards, done)``."""
        positions, rewards, _, done = step_batch(state, actions, self.threshold)
        return positions, rewards, done

    def incentive_features(self, state: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """``[one-hot positions, one-hot joint action]``, shape ``(B, 6N)`` float32."""
        return np.concatenate((one_hot(state), one_hot(actions)), axis=-1)

    def global_state(self, state: np.ndarray) -> np.ndarray:
        """The one-hot positions, shape ``(B, 3N)`` float32."""
        return one_hot(state)

    def prosocial_events(self, state: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """1 for every agent that picks the lever, else 0: shape ``(B, N)`` float64."""
        return (np.asarray(actions) == LEVER).astype(np.float64)
