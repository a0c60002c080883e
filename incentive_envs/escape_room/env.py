"""``escape_room_v0``: the Escape Room game ER(N, M) with a per-agent incentive channel.

=====================  ==================================================================
Agents                 ``agent_0 … agent_{N-1}`` (default N = 2, M = 1)
Action space           ``Discrete(3)``: the target position (0 lever, 1 start, 2 door)
Observation space      ``Box(0, ·, (3N + 1,), float32)``: ``[one-hot positions of agents
                       0 … N−1 (agent i at [3i, 3i+3)), own incentive last paid]``
State space            ``Box(0, 1, (3N,), float32)``: the one-hot positions
Parameters             :class:`EscapeRoomConfig`: ``n_agents, threshold, max_cycles,
                       max_incentive``; plus ``incentive, render_mode``
=====================  ==================================================================

All agents start at position 1. The rules — the door opens when at least ``M`` agents
pick the lever, ``+10`` for picking the open door, ``0`` for staying put, ``−1`` for any
other move, the episode ends when someone walks through the open door — are those of
:mod:`incentive_envs.escape_room.game`, whose :func:`~incentive_envs.escape_room.game.step_batch`
this env steps through (it is the env of :class:`~incentive_envs.escape_room.game.EscapeRoomTask`
through the shared adapter :class:`~incentive_envs.episodic.EpisodicParallelEnv`). A step
that both ends the game and reaches ``max_cycles`` reports termination only; an episode
that reaches ``max_cycles`` otherwise is truncated.

Incentives
----------
The planner adds a non-negative bonus to each agent's reward every step, in
``[0, max_incentive]``. Set it between steps with ``env.set_incentive(value)`` or at
``reset(options={"incentive": value})``, where ``value`` is either

* an array of shape ``(N,)``: a fixed per-agent bonus paid every step, or
* a callable ``incentive_fn(state, joint_action) -> array (N,)``, called every step with
  the global state before the move (:meth:`EscapeRoomEnv.state`) and the joint action
  (int64, shape ``(N,)``); its output is validated each step.

Rewards are environment reward plus incentive; ``infos[agent]`` reports them separately
(``"env_reward"``, ``"incentive"``) with ``"door_open"`` — at ``reset()`` too (zeros and a
closed door), so that libraries that build their info spec from ``reset`` see every key. The env accumulates, per episode,
:attr:`~EscapeRoomEnv.incentive_paid` (all bonuses) and
:attr:`~EscapeRoomEnv.social_welfare` (all environment rewards), to be compared with
:func:`~incentive_envs.escape_room.game.optimum`. The last observation entry is the bonus
paid to the agent in the previous step (0 after ``reset``).

The game is deterministic: the ``seed`` of ``reset`` is accepted for API compatibility only.

Version history
---------------
* v0: initial release (the episode length, first called ``max_steps``, is ``max_cycles``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from incentive_envs.env import MAX_CYCLES, env_constructors
from incentive_envs.episodic import EpisodicParallelEnv
from incentive_envs.escape_room.game import LEVER, EscapeRoomTask, check_params
from incentive_envs.validation import build_config, check_positive_int, check_scalar

_POSITION_NAMES = ("lever", "start", "door")


@dataclass(frozen=True, kw_only=True)
class EscapeRoomConfig:
    """Parameters of ``escape_room_v0``."""

    n_agents: int = 2
    """``N >= 2`` agents."""
    threshold: int = 1
    """``M``: lever pickers needed to open the door, ``1 <= M <= N − 1``."""
    max_cycles: int = 5
    """Steps per episode before truncation."""
    max_incentive: float = 10.0
    """``R_max > 0``: the largest per-agent per-step bonus."""

    def __post_init__(self) -> None:
        n_agents, threshold = check_params(self.n_agents, self.threshold)
        object.__setattr__(self, "n_agents", n_agents)
        object.__setattr__(self, "threshold", threshold)
        object.__setattr__(self, "max_cycles", check_positive_int(self.max_cycles, "max_cycles", MAX_CYCLES))
        object.__setattr__(
            self,
            "max_incentive",
            check_scalar(self.max_incentive, "max_incentive", low=0.0, low_inclusive=False),
        )


class EscapeRoomEnv(EpisodicParallelEnv):
    """The ``escape_room_v0`` parallel environment (see the module docstring).

    Parameters
    ----------
    incentive : array_like or callable, optional
        Initial incentive (see :meth:`~incentive_envs.episodic.EpisodicParallelEnv.set_incentive`);
        default: no bonus.
    render_mode : {None, "ansi", "human"}
    **params
        The fields of :class:`EscapeRoomConfig`.
    """

    metadata = {"render_modes": ["ansi", "human"], "name": "escape_room_v0", "is_parallelizable": True}

    def __init__(self, *, incentive=None, render_mode: str | None = None, **params):
        config = build_config(EscapeRoomConfig, params, "escape_room_v0")
        self.threshold = config.threshold
        task = EscapeRoomTask(config.n_agents, config.threshold, config.max_cycles)
        super().__init__(task, config, incentive=incentive, render_mode=render_mode)

    @property
    def positions(self) -> np.ndarray:
        """Each agent's position (0 lever, 1 start, 2 door), a copy."""
        return self._state[0].copy()

    def _extra_infos(self, previous, joint: np.ndarray | None) -> dict[str, list]:
        """``"door_open"``: whether at least ``M`` agents picked the lever in the step."""
        door_open = joint is not None and int(np.count_nonzero(joint == LEVER)) >= self.threshold
        return {"door_open": [door_open] * self.n_agents}

    def _action_names(self) -> str:
        return "0 lever, 1 start, 2 door"

    def _render_text(self) -> str:
        where = "  ".join(
            f"{agent}@{_POSITION_NAMES[position]}"
            for agent, position in zip(self.possible_agents, self._state[0])
        )
        door = "open" if self._extras["door_open"][0] else "closed"
        return (
            f"step {self._step}/{self.max_cycles}  door {door}  {where}  "
            f"welfare {self.social_welfare:.6g}  incentive paid {self.incentive_paid:.6g}"
        )


parallel_env, raw_env = env_constructors(EscapeRoomEnv)
env = raw_env
