"""``cleanup_v0``: Cleanup, a sequential social dilemma, with a per-agent incentive channel.

=====================  ==================================================================
Agents                 ``agent_0 … agent_{N-1}`` (default N = 2 on a 7 × 7 grid)
Action space           ``Discrete(6)``: up, down, left, right, stay, clean
Observation space      ``Box(0, ·, (D + 1,), float32)``: the one-hot grid channels (global
                       or an egocentric window), the own row and column one-hot, then the
                       own incentive last paid
State space            ``Box(0, 1, ((2 + N) H W,), float32)``: the waste, apple and agent
                       grids (:meth:`~incentive_envs.cleanup.game.CleanupTask.global_state`)
Parameters             :class:`CleanupConfig`: the map and rules of
                       :class:`~incentive_envs.cleanup.game.CleanupParams` (presets
                       ``PRESETS["7x7"]``, ``PRESETS["10x10"]``) and ``max_incentive``;
                       plus ``incentive, render_mode``
=====================  ==================================================================

A river fills with waste; apples regrow in the orchard only while the river is clean enough;
agents earn ``+1`` per apple and nothing for cleaning, which takes them away from the
orchard. All rules, rates and thresholds are in :mod:`incentive_envs.cleanup.game`; this env
is a thin adapter that steps one game (a batch of one) through
:meth:`~incentive_envs.cleanup.game.CleanupTask.transition`, drawing the step's randomness
from the generator seeded by ``reset(seed=...)``. Episodes are truncated after
``max_cycles`` steps (default 50); nothing terminates them.

Incentives
----------
The planner adds a non-negative bonus to each agent's reward every step, in
``[0, max_incentive]`` (default 2). Set it between steps with ``env.set_incentive(value)``
or at ``reset(options={"incentive": value})``, where ``value`` is either

* an array of shape ``(N,)``: a fixed per-agent bonus paid every step, or
* a callable ``incentive_fn(state, joint_action) -> array (N,)``, called every step with
  the global state before the move (:meth:`CleanupEnv.state`) and the joint action
  (int64, shape ``(N,)``); its output is validated each step.

Rewards are environment reward plus incentive; ``infos[agent]`` reports them separately
(``"env_reward"``, ``"incentive"``) with ``"cleaned"`` (waste cells in the agent's beam when
it cleaned) and ``"waste_share"`` (of the river after the step) — at ``reset()`` too. The env
accumulates, per episode, :attr:`~CleanupEnv.incentive_paid` and
:attr:`~CleanupEnv.social_welfare` (the collective environment return, the planner's
objective; with a cost of incentives ``κ``, the planner's objective is
``social_welfare − κ · incentive_paid``).

Version history
---------------
* v0: initial release.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from pettingzoo import ParallelEnv

from incentive_envs.cleanup.game import ACTION_NAMES, N_ACTIONS, CleanupParams, CleanupTask
from incentive_envs.env import env_constructors, render_text
from incentive_envs.validation import as_finite_array, build_config, check_scalar


@dataclass(frozen=True, kw_only=True)
class CleanupConfig(CleanupParams):
    """Parameters of ``cleanup_v0``: the game's and the incentive bound."""

    max_incentive: float = 2.0
    """``R_max > 0``: the largest per-agent per-step bonus."""

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(
            self,
            "max_incentive",
            check_scalar(self.max_incentive, "max_incentive", low=0.0, low_inclusive=False),
        )


def check_incentive(value, name: str, shape: tuple[int, ...], max_incentive: float) -> np.ndarray:
    """A float64 copy of a bonus array of exactly ``shape`` in ``[0, max_incentive]``;
    ``ValueError`` naming ``name`` and the first bad entry otherwise."""
    array = as_finite_array(value, name, shape)
    outside = np.argwhere((array < 0.0) | (array > max_incentive))
    if outside.size:
        index = tuple(int(i) for i in outside[0])
        raise ValueError(f"{name}{list(index)} = {float(array[index])!r} is outside [0, {max_incentive!r}]")
    return array


class CleanupEnv(ParallelEnv):
    """The ``cleanup_v0`` parallel environment (see the module docstring).

    Parameters
    ----------
    incentive : array_like or callable, optional
        Initial incentive (see :meth:`set_incentive`); default: no bonus.
    render_mode : {None, "ansi", "human"}
    **params
        The fields of :class:`CleanupConfig`.
    """

    metadata = {"render_modes": ["ansi", "human"], "name": "cleanup_v0", "is_parallelizable": True}

    def __init__(self, *, incentive=None, render_mode: str | None = None, **params):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}"
            )
        self.config = config = build_config(CleanupConfig, params, "cleanup_v0")
        self.task = CleanupTask(config)
        self.n_agents, self.max_cycles, self.max_incentive = (
            config.n_agents,
            config.max_cycles,
            config.max_incentive,
        )
        self.render_mode = render_mode
        self.possible_agents = [f"agent_{i}" for i in range(self.n_agents)]
        self.agents: list[str] = []
        high = np.append(np.ones(self.task.observation_shape), self.max_incentive).astype(np.float32)
        observation_space = spaces.Box(np.zeros_like(high), high, dtype=np.float32)
        self._observation_spaces = {agent: observation_space for agent in self.possible_agents}
        self._action_spaces = {agent: spaces.Discrete(N_ACTIONS) for agent in self.possible_agents}
        self._state_space = spaces.Box(0.0, 1.0, ((2 + self.n_agents) * self.task.n_cells,), dtype=np.float32)
        self.np_random, _ = seeding.np_random(None)
        self.set_incentive(np.zeros(self.n_agents) if incentive is None else incentive)
        self._start_episode()

    # -- spaces -------------------------------------------------------------------------
    def observation_space(self, agent: str) -> spaces.Box:
        return self._observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Discrete:
        return self._action_spaces[agent]

    @property
    def state_space(self) -> spaces.Box:
        """Global state: the waste, apple and agent grids."""
        return self._state_space

    def state(self) -> np.ndarray:
        return self.task.global_state(self._state)[0]

    @property
    def game_state(self):
        """The game as a batch of one :class:`~incentive_envs.cleanup.game.CleanupState` (a copy)."""
        return self._state.row(0)

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
            incentive
            if callable(incentive)
            else check_incentive(incentive, "incentive", (self.n_agents,), self.max_incentive)
        )

    # -- the PettingZoo API ----------------------------------------------------------------
    def reset(self, seed: int | None = None, options: dict | None = None):
        """Start an episode (``seed`` reseeds the env's generator); ``options`` may hold
        ``"incentive"``."""
        if seed is not None:
            self.np_random, _ = seeding.np_random(seed)
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
        return self._observation_dict(), self._info_dict(zeros, zeros, zeros)

    def _start_episode(self) -> None:
        """A fresh game, the episode's counters at zero."""
        self._state = self.task.reset(1, self.np_random)
        self._last_incentive = np.zeros(self.n_agents)
        self._step = 0
        self.incentive_paid = 0.0
        self.social_welfare = 0.0

    def step(self, actions: dict):
        if not self.agents:
            raise ValueError("step() called with no live agents: call reset() first")
        joint = self._joint_action(actions)
        if callable(self._incentive):
            incentive = check_incentive(
                self._incentive(self.state(), joint.copy()),
                "incentive_fn(state, joint_action)",
                (self.n_agents,),
                self.max_incentive,
            )
        else:
            incentive = self._incentive
        state, env_rewards, cleaned = self.task.transition(
            self._state, joint[None], self.task.draw_noise(self.np_random, 1)
        )
        self._state, env_rewards = state, env_rewards[0]
        self._last_incentive = incentive.copy()
        self._step += 1
        self.incentive_paid += float(incentive.sum())
        self.social_welfare += float(env_rewards.sum())
        truncated = self._step >= self.max_cycles
        rewards = {
            agent: float(env_rewards[i] + incentive[i]) for i, agent in enumerate(self.possible_agents)
        }
        infos = self._info_dict(env_rewards, incentive, cleaned[0])
        terminations = {agent: False for agent in self.agents}
        truncations = {agent: truncated for agent in self.agents}
        observations = self._observation_dict()
        if truncated:
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
            if action.shape != () or action.dtype.kind not in "iu" or not 0 <= action < N_ACTIONS:
                raise ValueError(
                    f"actions[{agent!r}] must be an integer in [0, {N_ACTIONS}) "
                    f"({', '.join(ACTION_NAMES)}), got {actions[agent]!r}"
                )
            joint[i] = action
        return joint

    def _info_dict(self, env_rewards: np.ndarray, incentive: np.ndarray, cleaned: np.ndarray) -> dict:
        waste_share = float(self.task.waste_share(self._state)[0])
        return {
            agent: {
                "env_reward": float(env_rewards[i]),
                "incentive": float(incentive[i]),
                "cleaned": int(cleaned[i]),
                "waste_share": waste_share,
            }
            for i, agent in enumerate(self.possible_agents)
        }

    def _observation_dict(self) -> dict:
        observations = np.column_stack((self.task.observe(self._state)[0], self._last_incentive))
        return dict(zip(self.possible_agents, observations.astype(np.float32)))

    def render(self):
        """``"ansi"``: return a text picture of the grid (``~`` clean river, ``#`` waste,
        ``o`` apple, ``.`` empty, digits: agents) with the step and the counters;
        ``"human"``: print it."""
        task = self.task
        cells = np.full(task.n_cells, ".")
        cells[task.river_cells] = np.where(self._state.waste[0], "#", "~")
        cells[task.orchard_cells[self._state.apples[0]]] = "o"
        cells[self._state.positions[0]] = [str(i % 10) for i in range(self.n_agents)]
        grid = "\n".join("".join(row) for row in cells.reshape(self.config.height, self.config.width))
        return render_text(
            self.render_mode,
            f"step {self._step}/{self.max_cycles}  welfare {self.social_welfare:.6g}  "
            f"incentive paid {self.incentive_paid:.6g}\n{grid}",
        )

    def close(self) -> None:
        pass


parallel_env, raw_env = env_constructors(CleanupEnv)
env = raw_env
