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
=========================================  =================================================

The state is whatever the task needs (an array, a dataclass of arrays) and is never
mutated: ``step`` returns a new one. ``done`` marks episodes that ended by the game's rules
(Escape Room's door); the runner (:func:`play`) truncates every episode after
``max_steps`` steps and ignores what finished episodes do afterwards. All randomness comes
from the ``numpy.random.Generator`` passed in, so a seeded run is reproducible.
:func:`check_task` is the conformance test every task passes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from incentive_envs.validation import check_positive_int

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
            before = task.observe(state)
            new_state, rewards, done = task.step(state, actions, rng)
            if not np.array_equal(task.observe(state), before):
                raise ValueError("task.step mutated the state it was given")
            _expect(rewards, (batch_size, task.n_agents), np.float64, "step rewards")
            _expect(done, (batch_size,), np.bool_, "step done")
            arrays += [observations, features, events, rewards, done]
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
