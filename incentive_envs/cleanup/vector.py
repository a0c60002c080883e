"""A Stable-Baselines3 ``VecEnv`` over ``B`` Cleanup games stepped together by the batched
core, for RL training with a shared policy (parameter sharing).

Sub-env ``j`` is agent ``j % N`` of game ``j // N``: ``num_envs = B N``. Observations are
those of ``cleanup_v0`` (:mod:`incentive_envs.cleanup.env`: the agent's observation and its
incentive last paid), rewards are env reward plus incentive, and all ``B`` games advance in
one call of :meth:`~incentive_envs.cleanup.game.CleanupTask.transition` — no loop over
games or agents. Episodes all last ``max_cycles`` steps and restart together; SB3's
conventions hold:

* the step that ends an episode returns ``done = True`` for every sub-env, the first
  observation of the next episode, and ``infos[j]["terminal_observation"]`` (the last
  observation of the finished one) with ``infos[j]["TimeLimit.truncated"] = True``, so PPO
  bootstraps the value of the cut (nothing terminates Cleanup);
* ``infos[j]["episode"] = {"r": return, "l": length}`` at that step (as SB3's ``Monitor``
  reports), and every step's ``infos[j]`` holds ``"env_reward"``, ``"incentive"`` and
  ``"cleaned"``;
* the infos of a reset are kept apart, in :attr:`reset_infos` (``{"waste_share": …}`` per
  sub-env), never merged into a step's infos;
* :meth:`seed` stores a seed for the next :meth:`reset`, which builds the env's
  ``numpy.random.Generator`` from it (``PPO(seed=s)`` calls ``seed(s)``, so seeded runs are
  reproducible); later episodes continue the same generator.

Incentives: ``incentive`` is a fixed per-agent bonus ``(N,)`` paid every step, or a callable
``incentive_fn(states (B, S), joint_actions (B, N)) -> (B, N)`` — the batched form of the
env's ``incentive_fn(state, joint_action)`` — validated every step against
``[0, max_incentive]``.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from stable_baselines3.common.vec_env import VecEnv

from incentive_envs.cleanup.env import CleanupConfig
from incentive_envs.cleanup.game import N_ACTIONS, CleanupTask
from incentive_envs.episodic import MAX_BATCH, check_actions, check_incentive
from incentive_envs.validation import build_config, check_positive_int, check_seed


class CleanupVecEnv(VecEnv):
    """``n_games`` Cleanup games as an SB3 ``VecEnv`` of ``n_games × N`` agents (module docstring).

    Parameters
    ----------
    n_games : int
        ``B``.
    incentive : array_like or callable, optional
        Default: no bonus.
    **params
        The fields of :class:`~incentive_envs.cleanup.env.CleanupConfig`.
    """

    def __init__(self, n_games: int = 8, *, incentive=None, **params):
        self.config = config = build_config(CleanupConfig, params, "CleanupVecEnv")
        self.task = CleanupTask(config)
        self.n_games = check_positive_int(n_games, "n_games", MAX_BATCH // config.n_agents)
        self.n_agents, self.max_incentive = config.n_agents, config.max_incentive
        self.incentive = (
            incentive
            if incentive is None or callable(incentive)
            else check_incentive(incentive, "incentive", (self.n_agents,), self.max_incentive)
        )
        high = np.append(np.ones(self.task.observation_shape), self.max_incentive).astype(np.float32)
        super().__init__(
            self.n_games * self.n_agents,
            spaces.Box(np.zeros_like(high), high, dtype=np.float32),
            spaces.Discrete(N_ACTIONS),
        )
        self.rng, _ = seeding.np_random(None)
        self._next_seed: int | None = None
        self._actions: np.ndarray | None = None
        self._state = None

    def seed(self, seed: int | None = None) -> list[int | None]:
        """Seed the next :meth:`reset` (``None``: fresh entropy)."""
        self._next_seed = None if seed is None else check_seed(seed)
        return [self._next_seed] * self.num_envs

    def reset(self) -> np.ndarray:
        if self._next_seed is not None:
            self.rng, _ = seeding.np_random(self._next_seed)
            self._next_seed = None
        self._start_episodes()
        return self._observations()

    def _start_episodes(self) -> None:
        self._state = self.task.reset(self.n_games, self.rng)
        self._steps = 0
        self._last_incentive = np.zeros((self.n_games, self.n_agents))
        self._returns = np.zeros((self.n_games, self.n_agents))
        share = self.task.waste_share(self._state)
        self.reset_infos = [{"waste_share": float(share[j // self.n_agents])} for j in range(self.num_envs)]

    def step_async(self, actions: np.ndarray) -> None:
        actions = np.asarray(actions)
        if actions.shape not in ((self.num_envs,), (self.num_envs, 1)):
            raise ValueError(f"actions must have shape ({self.num_envs},), got shape {actions.shape}")
        self._actions = check_actions(
            actions.reshape(self.n_games, self.n_agents), self.n_games, self.n_agents, N_ACTIONS
        )

    def step_wait(self):
        if self._state is None or self._actions is None:
            raise ValueError("step() needs reset() first and actions from step_async()")
        joint, self._actions = self._actions, None
        incentive = self._incentive(joint)
        state, env_rewards, cleaned = self.task.transition(
            self._state, joint, self.task.draw_noise(self.rng, self.n_games)
        )
        self._state, self._steps, self._last_incentive = state, self._steps + 1, incentive
        rewards = env_rewards + incentive
        self._returns += rewards
        observations = self._observations()
        infos = [
            {"env_reward": float(r), "incentive": float(i), "cleaned": int(c)}
            for r, i, c in zip(env_rewards.ravel(), incentive.ravel(), cleaned.ravel())
        ]
        done = self._steps >= self.config.max_cycles
        if done:
            for info, observation, total in zip(infos, observations, self._returns.ravel()):
                info.update(
                    terminal_observation=observation,
                    **{"TimeLimit.truncated": True, "episode": {"r": float(total), "l": self._steps}},
                )
            self._start_episodes()
            observations = self._observations()
        dones = np.full(self.num_envs, done)
        return observations, rewards.ravel().astype(np.float32), dones, infos

    def _incentive(self, joint: np.ndarray) -> np.ndarray:
        shape = (self.n_games, self.n_agents)
        if self.incentive is None:
            return np.zeros(shape)
        if callable(self.incentive):
            value = self.incentive(self.task.global_state(self._state), joint.copy())
            return check_incentive(value, "incentive_fn(states, joint_actions)", shape, self.max_incentive)
        return np.broadcast_to(self.incentive, shape).copy()

    def _observations(self) -> np.ndarray:
        incentive = self._last_incentive[..., None].astype(np.float32)
        return np.concatenate((self.task.observe(self._state), incentive), axis=2).reshape(self.num_envs, -1)

    def close(self) -> None:
        pass

    def get_attr(self, attr_name: str, indices=None) -> list:
        """The config field ``attr_name`` (shared by every sub-env), once per index;
        ``render_mode`` is ``None``. Other names raise ``AttributeError``, as SB3's
        ``VecEnv`` contract requires."""
        if attr_name != "render_mode" and not hasattr(self.config, attr_name):
            raise AttributeError(f"CleanupVecEnv sub-envs have no attribute {attr_name!r}")
        return [getattr(self.config, attr_name, None)] * len(self._get_indices(indices))

    def set_attr(self, attr_name: str, value, indices=None) -> None:
        raise ValueError("CleanupVecEnv sub-envs share one frozen config: build a new CleanupVecEnv instead")

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list:
        raise ValueError(f"CleanupVecEnv sub-envs are rows of one batch and have no method {method_name!r}")

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False] * len(self._get_indices(indices))
