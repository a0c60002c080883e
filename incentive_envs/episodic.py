"""Batched episodic tasks: the protocol that policy-gradient followers and incentive
designers play on, whatever the game.

A task is the game's rules as pure functions over a batch of ``B`` independent episodes of
``N`` agents — no env object, no per-env loop — so that learners can play thousands of
episodes per second and differentiate through their own learning step
(:mod:`agents.policy_gradient`, :mod:`planners.meta_gradient`, :mod:`planners.rl_planner`).
:class:`EpisodicTask` lists what a task provides:

=========================================  =================================================
``n_agents``, ``n_actions``, ``max_steps``  ``N``; discrete actions ``0 … n_actions − 1``;
                                           the episode length ``T`` (then truncated)
``observation_shape``                      one agent's observation, a tuple of ints
``incentive_feature_size``                 ``F``, the length of the designer's input
``prosocial_action``                       the cooperative action (the lever of Escape
                                           Room, cleaning in Cleanup), whose share of the
                                           agent-steps runs report
``reward_scale``                           a typical size of an episode's collective return
                                           (normalises planner rewards and observations)
``reset(batch_size, rng) -> state``        ``B`` fresh episodes
``observe(state)``                         ``(B, N, *observation_shape)`` float32
``step(state, actions, rng)``              ``actions (B, N)`` int64 ``-> (state, env_rewards
                                           (B, N) float64, done (B,) bool)``
``incentive_features(state, actions)``     ``(B, F)`` float32: the global state before the
                                           step and the joint action, the input of an
                                           incentive function ``r(s, a) ∈ [0, R_max]^N``
``prosocial_events(state, actions)``       ``(B, N)`` float64: how much of the prosocial act
                                           each agent performs in the step (1 per lever
                                           pull; waste cells its beam removes), what
                                           hand-made bonuses pay for
``global_state(state)``                    ``(B, S)`` float32 in ``[0, 1]``: what a planner
                                           sees of the state (the PettingZoo ``state()``)
=========================================  =================================================

The state is whatever the task needs (an array, a dataclass of arrays) and is never
mutated: ``step`` returns a new one. ``done`` marks episodes that ended by the game's rules
(Escape Room's door); the runner (:func:`play`) truncates every episode after
``max_steps`` steps and ignores what finished episodes do afterwards. All randomness comes
from the ``numpy.random.Generator`` passed in, so a seeded run is reproducible.
:func:`check_task` is the conformance test every task passes, and
:class:`EpisodicParallelEnv` the one PettingZoo adapter over a game of any task.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from pettingzoo import ParallelEnv

from incentive_envs.env import render_text
from incentive_envs.validation import as_finite_array, check_positive_int, check_seed

MAX_BATCH = 1 << 20
"""Largest accepted batch of episodes (checked before anything is allocated)."""


@runtime_checkable
class EpisodicTask(Protocol):
    """A batched episodic game (module docstring)."""

    n_agents: int
    n_actions: int
    max_steps: int
    observation_shape: tuple[int, ...]
    incentive_feature_size: int
    prosocial_action: int
    reward_scale: float

    def reset(self, batch_size: int, rng: np.random.Generator) -> Any: ...

    def observe(self, state: Any) -> np.ndarray: ...

    def step(
        self, state: Any, actions: np.ndarray, rng: np.random.Generator
    ) -> tuple[Any, np.ndarray, np.ndarray]: ...

    def incentive_features(self, state: Any, actions: np.ndarray) -> np.ndarray: ...

    def prosocial_events(self, state: Any, actions: np.ndarray) -> np.ndarray: ...

    def global_state(self, state: Any) -> np.ndarray: ...


@runtime_checkable
class ScheduleTask(EpisodicTask, Protocol):
    """An episodic task whose incentive is not a bonus added to rewards but a vector of
    rates ``θ ∈ [0, 1]^D`` inside the rules (a tax schedule), and whose planner objective is
    not the collective return (the tax economy's equality × productivity).

    Beyond :class:`EpisodicTask` it provides ``schedule_dim`` (``D``), ``schedule`` (the rates
    in force), ``objective_scale`` (a typical size of the planner objective of an episode),
    ``set_schedule(rates)``, ``objective(rollout) -> (B,)`` (the planner objective of every
    episode of a played batch under the rates it was played with, numpy) and two torch functions of a played
    batch and a rate tensor ``(D,)`` that may carry a graph: ``schedule_rewards(rollout,
    rates) -> (B, T, N)`` (the env rewards the agents would have had) and
    ``schedule_objective(rollout, rates) -> (B,)`` (the planner objective at the played
    actions).
    """

    schedule_dim: int
    schedule: np.ndarray
    objective_scale: float

    def set_schedule(self, rates) -> None: ...

    def objective(self, rollout: Rollout) -> np.ndarray: ...

    def schedule_rewards(self, rollout: Rollout, rates) -> Any: ...

    def schedule_objective(self, rollout: Rollout, rates) -> Any: ...


def check_generator(rng, name: str = "rng") -> np.random.Generator:
    """``rng`` if it is a ``numpy.random.Generator``; ``ValueError`` naming ``name`` otherwise."""
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"{name} must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def check_actions(
    actions, batch_size: int, n_agents: int, n_actions: int, name: str = "actions"
) -> np.ndarray:
    """Validate a joint action array of shape ``(B, N)`` with integer entries in
    ``[0, n_actions)``; returns it as int64. Floats, booleans and out-of-range values raise
    ``ValueError`` naming the first bad entry."""
    array = np.asarray(actions)
    if array.shape != (batch_size, n_agents):
        raise ValueError(f"{name} must have shape {(batch_size, n_agents)}, got shape {array.shape}")
    if array.dtype.kind not in "iu":
        raise ValueError(f"{name} must have an integer dtype, got {array.dtype}")
    outside = (array < 0) | (array >= n_actions)
    if np.any(outside):
        index = tuple(int(i) for i in np.argwhere(outside)[0])
        raise ValueError(f"{name}{list(index)} = {int(array[index])} is not an action in [0, {n_actions})")
    return array.astype(np.int64, copy=False)


@dataclass(frozen=True)
class Rollout:
    """``B`` played episodes of a task, padded to ``T`` steps.

    Attributes
    ----------
    observations : ndarray of float32, shape (B, T, N, *observation_shape)
        Every agent's observation before each step.
    actions : ndarray of int64, shape (B, T, N)
        Joint action of each step (meaningless where the episode was over).
    env_rewards : ndarray of float64, shape (B, T, N)
        Environment rewards, zero after an episode ended.
    alive : ndarray of bool, shape (B, T)
        Whether step ``t`` of episode ``b`` was played.
    incentive_features : ndarray of float32, shape (B, T, F)
        The task's :meth:`~EpisodicTask.incentive_features` of each step's state and joint action.
    prosocial : ndarray of float64, shape (B, T, N)
        The task's :meth:`~EpisodicTask.prosocial_events` of each step, zero after an episode ended.
    """

    observations: np.ndarray
    actions: np.ndarray
    env_rewards: np.ndarray
    alive: np.ndarray
    incentive_features: np.ndarray
    prosocial: np.ndarray

    @property
    def batch_size(self) -> int:
        return self.actions.shape[0]

    @property
    def max_steps(self) -> int:
        return self.actions.shape[1]

    @property
    def n_agents(self) -> int:
        return self.actions.shape[2]

    def welfare(self) -> np.ndarray:
        """Each episode's collective environment return (summed over agents and steps), shape (B,)."""
        return self.env_rewards.sum(axis=(1, 2))

    def action_frequencies(self, n_actions: int) -> np.ndarray:
        """Fraction of played steps in which each agent took each action, shape (N, n_actions)."""
        n_actions = check_positive_int(n_actions, "n_actions")
        played = np.broadcast_to(self.alive[..., None], self.actions.shape)
        cells = (np.arange(self.n_agents) * n_actions + self.actions)[played]
        counts = np.bincount(cells, minlength=self.n_agents * n_actions).reshape(self.n_agents, n_actions)
        return counts / max(int(self.alive.sum()), 1)

    def action_share(self, action: int) -> float:
        """The share of played agent-steps in which ``action`` was taken."""
        played = np.broadcast_to(self.alive[..., None], self.actions.shape)
        return float(np.count_nonzero((self.actions == action) & played)) / max(int(played.sum()), 1)


def play(
    task: EpisodicTask,
    choose: Callable[[int, np.ndarray], np.ndarray],
    batch_size: int,
    rng: np.random.Generator,
) -> Rollout:
    """Play ``batch_size`` episodes of ``task`` in parallel.

    Parameters
    ----------
    task : EpisodicTask
    choose : callable
        ``choose(t, observations) -> actions``: the joint actions ``(B, N)`` (int64) of every
        episode at step ``t`` from the observations ``(B, N, *observation_shape)``; those of
        finished episodes are ignored. It is trusted (sampled actions): ``task.step`` checks
        nothing it would not check anyway.
    batch_size : int
    rng : numpy.random.Generator
        Passed to ``task.reset`` and ``task.step`` (the caller may draw from it in ``choose``).
    """
    batch_size = check_positive_int(batch_size, "batch_size", MAX_BATCH)
    check_generator(rng)
    n_agents, steps = task.n_agents, task.max_steps
    shape = (batch_size, steps, n_agents)
    observations = np.empty((batch_size, steps, n_agents, *task.observation_shape), dtype=np.float32)
    actions = np.empty(shape, dtype=np.int64)
    env_rewards, alive = np.zeros(shape), np.zeros((batch_size, steps), dtype=bool)
    features = np.empty((batch_size, steps, task.incentive_feature_size), dtype=np.float32)
    prosocial = np.zeros(shape)
    state, running = task.reset(batch_size, rng), np.ones(batch_size, dtype=bool)
    for t in range(steps):
        observations[:, t], alive[:, t] = task.observe(state), running
        actions[:, t] = choose(t, observations[:, t])
        features[:, t] = task.incentive_features(state, actions[:, t])
        prosocial[:, t] = np.where(running[:, None], task.prosocial_events(state, actions[:, t]), 0.0)
        state, rewards, done = task.step(state, actions[:, t], rng)
        env_rewards[:, t] = np.where(running[:, None], rewards, 0.0)
        running = running & ~done
    return Rollout(observations, actions, env_rewards, alive, features, prosocial)


def replay(task: EpisodicTask, actions, rng: np.random.Generator) -> Rollout:
    """The rollout of fixed joint actions ``(B, T, N)`` (``T = task.max_steps``): observations,
    rewards and the alive mask follow from the rules; actions after an episode ended are kept
    but masked out."""
    actions = np.asarray(actions)
    if actions.ndim != 3 or actions.shape[1:] != (task.max_steps, task.n_agents):
        raise ValueError(
            f"actions must have shape (batch, {task.max_steps}, {task.n_agents}), got shape {actions.shape}"
        )
    check_actions(
        actions.reshape(-1, task.n_agents), actions.shape[0] * task.max_steps, task.n_agents, task.n_actions
    )
    return play(task, lambda t, observations: actions[:, t].astype(np.int64), actions.shape[0], rng)


def check_task(task: EpisodicTask, batch_size: int = 3, seed: int = 0) -> None:
    """The conformance test of an :class:`EpisodicTask`; raises ``ValueError`` on the first
    violation.

    Checks the attributes (positive integers, ``0 <= prosocial_action < n_actions``,
    ``reward_scale > 0``), the shapes and dtypes of everything ``reset``, ``observe``,
    ``step`` and ``incentive_features`` return over a whole episode of random actions,
    finite values, that ``step`` does not mutate the state it is given, and that two runs
    from the same seed are identical.
    """
    if not isinstance(task, EpisodicTask):
        raise ValueError(f"task must implement EpisodicTask, got {type(task).__name__}")
    for name in ("n_agents", "n_actions", "max_steps", "incentive_feature_size"):
        check_positive_int(getattr(task, name), f"task.{name}")
    if not 0 <= task.prosocial_action < task.n_actions:
        raise ValueError(f"task.prosocial_action = {task.prosocial_action!r} is not an action")
    if not (np.isfinite(task.reward_scale) and task.reward_scale > 0):
        raise ValueError(f"task.reward_scale must be positive and finite, got {task.reward_scale!r}")

    def trace(rng_seed: int) -> list[np.ndarray]:
        rng = np.random.default_rng(rng_seed)
        state, arrays = task.reset(batch_size, rng), []
        for _ in range(task.max_steps):
            observations = task.observe(state)
            _expect(observations, (batch_size, task.n_agents, *task.observation_shape), np.float32, "observe")
            actions = rng.integers(task.n_actions, size=(batch_size, task.n_agents))
            features = task.incentive_features(state, actions)
            _expect(features, (batch_size, task.incentive_feature_size), np.float32, "incentive_features")
            events = task.prosocial_events(state, actions)
            _expect(events, (batch_size, task.n_agents), np.float64, "prosocial_events")
            global_state = task.global_state(state)
            if global_state.ndim != 2 or global_state.shape[0] != batch_size:
                raise ValueError(
                    f"task global_state must have shape ({batch_size}, S), got {global_state.shape}"
                )
            _expect(global_state, global_state.shape, np.float32, "global_state")
            if np.any((global_state < 0) | (global_state > 1)):
                raise ValueError("task global_state must lie in [0, 1]")
            before = task.observe(state)
            new_state, rewards, done = task.step(state, actions, rng)
            if not np.array_equal(task.observe(state), before):
                raise ValueError("task.step mutated the state it was given")
            _expect(rewards, (batch_size, task.n_agents), np.float64, "step rewards")
            _expect(done, (batch_size,), np.bool_, "step done")
            arrays += [observations, features, events, global_state, rewards, done]
            state = new_state
        return arrays

    first, second = trace(seed), trace(seed)
    if not all(np.array_equal(a, b) for a, b in zip(first, second)):
        raise ValueError("two runs of the task from the same seed differ")


def _expect(array, shape: tuple, dtype, what: str) -> None:
    if not isinstance(array, np.ndarray) or array.shape != shape or array.dtype != dtype:
        got = (getattr(array, "shape", None), getattr(array, "dtype", type(array).__name__))
        raise ValueError(f"task {what} must be a {np.dtype(dtype)} array of shape {shape}, got {got}")
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise ValueError(f"task {what} has non-finite entries")


def check_incentive(value, name: str, shape: tuple[int, ...], max_incentive: float) -> np.ndarray:
    """A float64 copy of a bonus array of exactly ``shape`` in ``[0, max_incentive]``;
    ``ValueError`` naming ``name`` and the first bad entry otherwise."""
    array = as_finite_array(value, name, shape)
    outside = np.argwhere((array < 0.0) | (array > max_incentive))
    if outside.size:
        index = tuple(int(i) for i in outside[0])
        raise ValueError(f"{name}{list(index)} = {float(array[index])!r} is outside [0, {max_incentive!r}]")
    return array


class EpisodicParallelEnv(ParallelEnv):
    """A PettingZoo ``ParallelEnv`` over one game (a batch of one) of an :class:`EpisodicTask`,
    with a per-agent incentive channel.

    A game's env module subclasses it with its config, its ``metadata["name"]``, its extra
    per-agent infos (:meth:`_extra_infos`) and its text picture (:meth:`_render_text`). The
    mechanics are the same for every game:

    * agents ``agent_0 … agent_{N-1}``; actions ``Discrete(n_actions)``, checked (a bad one
      raises ``ValueError`` naming the agent);
    * agent ``i``'s observation is the task's (flattened, in ``[0, 1]``) followed by the bonus
      paid to it in the previous step (0 after ``reset``); ``state()`` is the task's
      ``global_state``;
    * the planner's incentive is an array ``(N,)`` paid every step, or a callable
      ``incentive_fn(state, joint_action) -> (N,)`` called with ``state()`` before the move;
      either must lie in ``[0, max_incentive]`` (``set_incentive`` or
      ``reset(options={"incentive": ...})``); rewards are env reward plus incentive;
    * a step is ``task.step`` on the game with the env's generator (seeded by
      ``reset(seed=...)``); a step in which the task reports ``done`` terminates the
      episode, which is otherwise truncated after ``max_cycles`` steps;
    * ``infos[agent]`` holds ``"env_reward"`` and ``"incentive"`` and the subclass's extras,
      at ``reset`` too (zeros); :attr:`social_welfare` and :attr:`incentive_paid` sum the
      episode's environment rewards and bonuses.

    Parameters
    ----------
    task : EpisodicTask
        With ``max_steps`` equal to ``config.max_cycles``.
    config
        The env's validated config: at least ``max_cycles`` and ``max_incentive``.
    incentive : array_like or callable, optional
        Default: no bonus.
    render_mode : {None, "ansi", "human"}
    """

    metadata = {"render_modes": ["ansi", "human"], "name": "episodic_env", "is_parallelizable": True}

    def __init__(self, task: EpisodicTask, config, *, incentive=None, render_mode: str | None = None):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}"
            )
        self.task, self.config = task, config
        self.n_agents, self.max_cycles, self.max_incentive = (
            task.n_agents,
            config.max_cycles,
            config.max_incentive,
        )
        self.render_mode = render_mode
        self.possible_agents = [f"agent_{i}" for i in range(self.n_agents)]
        self.agents: list[str] = []
        self._agent_index = {agent: i for i, agent in enumerate(self.possible_agents)}
        high = np.append(np.ones(int(np.prod(task.observation_shape))), self.max_incentive).astype(np.float32)
        observation_space = spaces.Box(np.zeros_like(high), high, dtype=np.float32)
        self._observation_spaces = {agent: observation_space for agent in self.possible_agents}
        self._action_spaces = {agent: spaces.Discrete(task.n_actions) for agent in self.possible_agents}
        self.np_random, _ = seeding.np_random(None)
        self.set_incentive(np.zeros(self.n_agents) if incentive is None else incentive)
        self._start_episode()
        self._state_space = spaces.Box(0.0, 1.0, (self.state().size,), dtype=np.float32)

    # -- spaces -------------------------------------------------------------------------
    def observation_space(self, agent: str) -> spaces.Box:
        return self._observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Discrete:
        return self._action_spaces[agent]

    @property
    def state_space(self) -> spaces.Box:
        """The task's global state."""
        return self._state_space

    def state(self) -> np.ndarray:
        return self.task.global_state(self._state)[0]

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
        # validate everything first: a refused reset changes nothing
        seed = None if seed is None else check_seed(seed)
        if options is not None and not isinstance(options, dict):
            raise ValueError(f"options must be a dict or None, got {type(options).__name__}")
        options = dict(options or {})
        unknown = set(options) - {"incentive"}
        if unknown:  # PettingZoo's own conformance test passes foreign options: warn, don't fail
            warnings.warn(
                f"reset() ignores unknown options {sorted(unknown)}; known: incentive", stacklevel=2
            )
        incentive = options.get("incentive")
        if incentive is not None and not callable(incentive):
            incentive = check_incentive(incentive, "incentive", (self.n_agents,), self.max_incentive)
        if seed is not None:
            self.np_random, _ = seeding.np_random(seed)
        if incentive is not None:
            self._incentive = incentive
        self._start_episode()
        self.agents = list(self.possible_agents)
        zeros = np.zeros(self.n_agents)
        return self._observation_dict(), self._info_dict(zeros, zeros)

    def _start_episode(self) -> None:
        """A fresh game, the episode's counters at zero."""
        self._state = self.task.reset(1, self.np_random)
        self._extras = self._extra_infos(None, None)
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
        previous = self._state
        self._state, env_rewards, done = self.task.step(previous, joint[None], self.np_random)
        env_rewards = env_rewards[0]
        self._extras = self._extra_infos(previous, joint)
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
        extra = [agent for agent in actions if agent not in self._agent_index]
        if missing or extra:
            raise ValueError(
                f"actions must have one entry per live agent; missing {missing[:5]}, unknown {extra[:5]}"
            )
        joint = np.empty(self.n_agents, dtype=np.int64)
        for i, agent in enumerate(self.possible_agents):
            action = np.asarray(actions[agent])
            if action.shape != () or action.dtype.kind not in "iu" or not 0 <= action < self.task.n_actions:
                raise ValueError(
                    f"actions[{agent!r}] must be an integer in [0, {self.task.n_actions}) "
                    f"({self._action_names()}), got {actions[agent]!r}"
                )
            joint[i] = action
        return joint

    def _info_dict(self, env_rewards: np.ndarray, incentive: np.ndarray) -> dict:
        return {
            agent: {
                "env_reward": float(env_rewards[i]),
                "incentive": float(incentive[i]),
                **{key: values[i] for key, values in self._extras.items()},
            }
            for i, agent in enumerate(self.possible_agents)
        }

    def _observation_dict(self) -> dict:
        observations = self.task.observe(self._state)[0].reshape(self.n_agents, -1)
        observations = np.column_stack((observations, self._last_incentive)).astype(np.float32)
        return dict(zip(self.possible_agents, observations))

    # -- what subclasses add ------------------------------------------------------------------
    def _extra_infos(self, previous, joint: np.ndarray | None) -> dict[str, list]:
        """Per-agent infos beyond rewards after a step from ``previous`` with ``joint`` (both
        ``None`` at reset): ``{key: [value of agent 0, …]}``. Default: none."""
        return {}

    def _action_names(self) -> str:
        """The actions' names, for error messages."""
        return ", ".join(str(action) for action in range(self.task.n_actions))

    def _render_text(self) -> str:
        """The text picture of :meth:`render`."""
        return (
            f"step {self._step}/{self.max_cycles}  welfare {self.social_welfare:.6g}  "
            f"incentive paid {self.incentive_paid:.6g}"
        )

    def render(self):
        """``"ansi"``: return a text picture of the game; ``"human"``: print it."""
        return render_text(self.render_mode, self._render_text())

    def close(self) -> None:
        pass
