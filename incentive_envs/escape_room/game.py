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
through it, and batched learners may call it directly on many games at once.
"""

from __future__ import annotations

import numpy as np

from incentive_envs.validation import check_int

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
