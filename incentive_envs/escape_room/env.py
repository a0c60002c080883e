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
this env steps through. A step that both ends the game and reaches ``max_cycles`` reports
termination only; an episode that reaches ``max_cycles`` otherwise is truncated.

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

import warnings
from dataclasses import dataclass

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from incentive_envs.env import MAX_CYCLES, env_constructors, render_text
from incentive_envs.escape_room.game import N_POSITIONS, START, check_params, one_hot, step_batch
from incentive_envs.validation import (
    as_finite_array,
    build_config,
    check_positive_int,
    check_scalar,
    check_seed,
)

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


class EscapeRoomEnv(ParallelEnv):
    """The ``escape_room_v0`` parallel environment (see the module docstring).

    Parameters
    ----------
    incentive : array_like or callable, optional
        Initial incentive (see :meth:`set_incentive`); default: no bonus.
    render_mode : {None, "ansi", "human"}
    **params
        The fields of :class:`EscapeRoomConfig`.
    """

    metadata = {"render_modes": ["ansi", "human"], "name": "escape_room_v0", "is_parallelizable": True}

    def __init__(self, *, incentive=None, render_mode: str | None = None, **params):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}"
            )
        self.config = config = build_config(EscapeRoomConfig, params, "escape_room_v0")
        self.n_agents, self.threshold = config.n_agents, config.threshold
        self.max_cycles = config.max_cycles
        self.max_incentive = config.max_incentive
        self.render_mode = render_mode
        self.possible_agents = [f"agent_{i}" for i in range(self.n_agents)]
        self.agents: list[str] = []
        state_dim = N_POSITIONS * self.n_agents
        high = np.append(np.ones(state_dim), self.max_incentive).astype(np.float32)
        observation_space = spaces.Box(np.zeros_like(high), high, dtype=np.float32)
        self._observation_spaces = {agent: observation_space for agent in self.possible_agents}
        self._action_spaces = {agent: spaces.Discrete(N_POSITIONS) for agent in self.possible_agents}
        self._state_space = spaces.Box(0.0, 1.0, (state_dim,), dtype=np.float32)
        self.set_incentive(np.zeros(self.n_agents) if incentive is None else incentive)
        self._start_episode()

    # -- spaces -------------------------------------------------------------------------
    def observation_space(self, agent: str) -> spaces.Box:
        return self._observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Discrete:
        return self._action_spaces[agent]

    @property
    def state_space(self) -> spaces.Box:
        """Global state: the one-hot positions of all agents."""
        return self._state_space

    def state(self) -> np.ndarray:
        return one_hot(self._positions[None])[0]

    @property
    def positions(self) -> np.ndarray:
        """Each agent's position (0 lever, 1 start, 2 door), a copy."""
        return self._positions.copy()

    # -- incentives -------------------------------------------------------------------------
    def set_incentive(self, incentive) -> None:
        """Set the bonus for the following steps.

        Parameters
        ----------
        incentive : array_like of shape (N,) or callable
            A fixed per-agent bonus in ``[0, max_incentive]``, or
            ``incentive_fn(state, joint_action)`` returning one (checked every step).

        Raises
        ------
        ValueError
            If the array has the wrong shape, is not finite or leaves ``[0, max_incentive]``.
        """
        self._incentive = (
            incentive if callable(incentive) else self._validate_incentive(incentive, "incentive")
        )

    def _validate_incentive(self, value, name: str) -> np.ndarray:
        array = as_finite_array(value, name, (self.n_agents,))
        outside = np.flatnonzero((array < 0.0) | (array > self.max_incentive))
        if outside.size:
            raise ValueError(
                f"{name}[{outside[0]}] = {float(array[outside[0]])!r} is outside [0, {self.max_incentive!r}]"
            )
        return array

    # -- the PettingZoo API ----------------------------------------------------------------
    def reset(self, seed: int | None = None, options: dict | None = None):
        """Start an episode with every agent at the start; ``options`` may hold ``"incentive"``."""
        if seed is not None:
            check_seed(seed)  # accepted for API compatibility: the game is deterministic
        if options is not None and not isinstance(options, dict):
            raise ValueError(f"options must be a dict or None, got {type(options).__name__}")
        options = dict(options or {})
        unknown = set(options) - {"incentive"}
        if unknown:  # PettingZoo's own conformance test passes foreign options: warn, don't fail
            warnings.warn(
                f"reset() ignores unknown options {sorted(unknown)}; known: incentive", stacklevel=2
            )
        if "incentive" in options:
            self.set_incentive(options["incentive"])
        self._start_episode()
        self.agents = list(self.possible_agents)
        zeros = np.zeros(self.n_agents)
        return self._observation_dict(), self._info_dict(zeros, zeros)

    def _start_episode(self) -> None:
        """Every agent at the start, the door closed, the episode's counters at zero."""
        self._positions = np.full(self.n_agents, START, dtype=np.int64)
        self._last_incentive = np.zeros(self.n_agents)
        self._door_open = False
        self._step = 0
        self.incentive_paid = 0.0
        self.social_welfare = 0.0

    def step(self, actions: dict):
        if not self.agents:
            raise ValueError("step() called with no live agents: call reset() first")
        joint = self._joint_action(actions)
        state = self.state()
        positions, env_rewards, door_open, done = step_batch(
            self._positions[None], joint[None], self.threshold
        )
        if callable(self._incentive):
            incentive = self._validate_incentive(
                self._incentive(state, joint.copy()), "incentive_fn(state, joint_action)"
            )
        else:
            incentive = self._incentive
        env_rewards = env_rewards[0]
        self._positions = positions[0]
        self._door_open = bool(door_open[0])
        self._last_incentive = incentive.copy()
        self._step += 1
        self.incentive_paid += float(incentive.sum())
        self.social_welfare += float(env_rewards.sum())
        terminated = bool(done[0])
        truncated = not terminated and self._step >= self.max_cycles
        rewards = {
            agent: float(env_rewards[i] + incentive[i]) for i, agent in enumerate(self.possible_agents)
        }
        infos = self._info_dict(env_rewards, incentive)
        terminations = {agent: terminated for agent in self.agents}
        truncations = {agent: truncated for agent in self.agents}
        observations = self._observation_dict()
        if terminated or truncated:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def _joint_action(self, actions: dict) -> np.ndarray:
        if not isinstance(actions, dict):
            raise ValueError(f"actions must be a dict keyed by agent, got {type(actions).__name__}")
        missing = [agent for agent in self.agents if agent not in actions]
        extra = [agent for agent in actions if agent not in self._observation_spaces]
        if missing or extra:
            raise ValueError(
                f"actions must have one entry per live agent; missing {missing[:5]}, unknown {extra[:5]}"
            )
        joint = np.empty(self.n_agents, dtype=np.int64)
        for i, agent in enumerate(self.possible_agents):
            action = np.asarray(actions[agent])
            if action.shape != () or action.dtype.kind not in "iu" or not 0 <= action < N_POSITIONS:
                raise ValueError(
                    f"actions[{agent!r}] must be an integer in {{0, 1, 2}}, got {actions[agent]!r}"
                )
            joint[i] = action
        return joint

    def _info_dict(self, env_rewards: np.ndarray, incentive: np.ndarray) -> dict:
        return {
            agent: {
                "env_reward": float(env_rewards[i]),
                "incentive": float(incentive[i]),
                "door_open": self._door_open,
            }
            for i, agent in enumerate(self.possible_agents)
        }

    def _observation_dict(self) -> dict:
        positions = np.broadcast_to(self.state(), (self.n_agents, N_POSITIONS * self.n_agents))
        observations = np.column_stack((positions, self._last_incentive)).astype(np.float32)
        return dict(zip(self.possible_agents, observations))

    def render(self):
        """``"ansi"``: return a one-line text picture of the room; ``"human"``: print it."""
        where = "  ".join(
            f"{agent}@{_POSITION_NAMES[position]}"
            for agent, position in zip(self.possible_agents, self._positions)
        )
        door = "open" if self._door_open else "closed"
        return render_text(
            self.render_mode,
            f"step {self._step}/{self.max_cycles}  door {door}  {where}  "
            f"welfare {self.social_welfare:.6g}  incentive paid {self.incentive_paid:.6g}",
        )

    def close(self) -> None:
        pass


parallel_env, raw_env = env_constructors(EscapeRoomEnv)
env = raw_env
