"""The "dual RL" baseline: a PPO planner that learns which bonus to pay for the prosocial
events of an episodic task (lever pulls on Escape Room, waste cells cleaned on Cleanup), or
which tax schedule to post on a schedule task (the tax economy, :class:`ScheduleChoiceEnv`).

The planner is a Stable-Baselines3 PPO agent (Schulman et al. 2017, "Proximal policy
optimization algorithms", arXiv:1707.06347) acting on :class:`IncentiveChoiceEnv`, a
gymnasium env whose one step is one learning iteration of the followers:

* action: a bonus level per agent, ``MultiDiscrete([K] * N)`` indexing ``bonus_levels``
  (default ``0, 1, 2, 3``); agent ``i`` is paid its bonus per unit of
  ``task.prosocial_events`` (per lever pull, per waste cell cleaned);
* the step: the followers (:class:`~agents.policy_gradient.PolicyGradientLearners`) play a
  batch of ``B`` episodes, are paid the bonuses and take one REINFORCE step on env reward
  plus bonus;
* reward: the planner objective per episode of that batch, ``(W − κ · paid) / S``
  (``W`` = collective env return of an episode, ``κ`` = ``cost_weight``, ``S`` =
  ``task.reward_scale``, e.g. ``|optimum|`` on Escape Room);
* observation: what the planner saw of the batch — each agent's action frequencies over the
  played steps (``N × n_actions`` entries) and ``W / S`` clipped to ``[−2, 2]``.

The followers learn simultaneously and are never reset: the planner faces one long learning
process, cut into episodes of ``horizon`` iterations only as PPO's bookkeeping unit
(truncated, so PPO bootstraps across the cut). The planner thus learns online, from the
same follower episodes the meta-gradient designer gets, with no knowledge of the game or
of the learning rule.

:class:`RLPlanner` steps PPO's rollout/train cycle by hand, one env step per
:meth:`~RLPlanner.iteration` (what ``PPO.collect_rollouts`` does for one step: sample from
the policy, step the env, bootstrap truncated episodes, add to the rollout buffer; and
``PPO.train`` on the full buffer every ``n_steps`` iterations), instead of calling
``learn``, which owns the loop and drops a partly collected rollout when stopped. PPO's
sampling and minibatch shuffling draw from torch's and NumPy's global generators; the
planner swaps in its own generator states around every iteration, so that runs do not
disturb each other and a checkpoint (:meth:`~RLPlanner.state_dict`) resumes exactly.
"""

from __future__ import annotations

import copy
import random
from contextlib import contextmanager

import gymnasium
import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.utils import obs_as_tensor
from stable_baselines3.common.vec_env import DummyVecEnv

from agents.policy_gradient import (
    IterativeDesigner,
    PolicyGradientLearners,
    entry,
    generator_state,
    iteration_metrics,
)
from incentive_envs.episodic import ScheduleTask
from incentive_envs.validation import (
    MAX_LEGACY_SEED,
    as_finite_array,
    check_generator_state,
    check_int,
    check_positive_int,
    check_scalar,
    check_seed,
)


def _check_bonus_levels(bonus_levels) -> np.ndarray:
    """``bonus_levels`` as an array of at least two non-negative numbers, else ``ValueError``."""
    levels = as_finite_array(bonus_levels, "bonus_levels")
    if levels.ndim != 1 or levels.size < 2 or np.any(levels < 0):
        raise ValueError(f"bonus_levels must be >= 2 non-negative numbers, got {bonus_levels!r}")
    return levels


_BUFFER_FIELDS = (
    "observations",
    "actions",
    "rewards",
    "returns",
    "episode_starts",
    "values",
    "log_probs",
    "advantages",
)


class IncentiveChoiceEnv(gymnasium.Env):
    """The planner's env (module docstring): one step = one follower learning iteration.

    Parameters
    ----------
    learners : PolicyGradientLearners
        The followers, trained in place.
    batch_size : int
        Follower episodes ``B`` per step.
    bonus_levels : array_like of float
        The ``K`` bonuses (non-negative) the planner chooses from for each agent.
    cost_weight : float
        ``κ >= 0``.
    horizon : int
        Steps per planner episode (then truncated).

    Attributes
    ----------
    last_step : dict
        The metrics of the last step (:data:`agents.policy_gradient.METRICS`) and
        ``"bonus"``, the chosen bonus of every agent.
    episodes : int
        Follower episodes played so far.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        learners: PolicyGradientLearners,
        batch_size: int,
        bonus_levels=(0.0, 1.0, 2.0, 3.0),
        cost_weight: float = 0.01,
        horizon: int = 50,
    ):
        if not isinstance(learners, PolicyGradientLearners):
            raise ValueError(f"learners must be PolicyGradientLearners, got {type(learners).__name__}")
        self.learners = learners
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.bonus_levels = _check_bonus_levels(bonus_levels)
        self.cost_weight = check_scalar(cost_weight, "cost_weight", low=0.0)
        self.horizon = check_positive_int(horizon, "horizon")
        task = learners.task
        self.scale = float(task.reward_scale)
        frequencies = task.n_agents * task.n_actions
        self.action_space = spaces.MultiDiscrete([self.bonus_levels.size] * task.n_agents)
        low = np.append(np.zeros(frequencies), -2.0).astype(np.float32)
        high = np.append(np.ones(frequencies), 2.0).astype(np.float32)
        self.observation_space = spaces.Box(low, high, dtype=np.float32)
        self.last_step: dict = {}
        self.episodes = 0
        self._observation = np.append(np.full(frequencies, 1.0 / task.n_actions), 0.0).astype(np.float32)
        self._steps = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start a planner episode; the followers keep learning where they are. ``seed``
        seeds :attr:`np_random`, which samples the followers' episodes."""
        super().reset(seed=seed)
        self._steps = 0
        return self._observation.copy(), {}

    def step(self, action):
        bonus = self.bonus_levels[np.asarray(action, dtype=np.int64)]
        learners = self.learners
        rollout = learners.sample(self.batch_size, self.np_random)
        paid = bonus * rollout.prosocial
        learners.step(rollout, torch.as_tensor(rollout.env_rewards + paid, dtype=learners.dtype))
        self.episodes += self.batch_size
        paid_per_episode = float(paid.sum()) / self.batch_size
        self.last_step = {
            **iteration_metrics(rollout, learners.task, paid_per_episode, self.episodes),
            "bonus": bonus.tolist(),
        }
        welfare = self.last_step["welfare"]
        self._observation = np.append(
            rollout.action_frequencies(learners.n_actions).ravel(), np.clip(welfare / self.scale, -2.0, 2.0)
        ).astype(np.float32)
        self._steps += 1
        reward = (welfare - self.cost_weight * paid_per_episode) / self.scale
        return self._observation.copy(), reward, False, self._steps >= self.horizon, {}

    def state_dict(self) -> dict:
        """The env's own state (the followers are saved by the planner)."""
        return {
            "observation": self._observation.copy(),
            "steps": self._steps,
            "episodes": self.episodes,
            "last_step": copy.deepcopy(self.last_step),
            "np_random": generator_state(self.np_random),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` (after the followers)."""
        what = "IncentiveChoiceEnv state"
        observation = as_finite_array(
            entry(state, "observation", what), "observation", self._observation.shape
        )
        steps = check_int(entry(state, "steps", what), "steps", low=0)
        episodes = check_int(entry(state, "episodes", what), "episodes", low=0)
        rng_state = check_generator_state(self.np_random, entry(state, "np_random", what))
        self._observation, self._steps, self.episodes = observation.astype(np.float32), steps, episodes
        self.last_step = copy.deepcopy(entry(state, "last_step", what))
        self.np_random.bit_generator.state = rng_state


class ScheduleChoiceEnv(IncentiveChoiceEnv):
    """The planner's env on a :class:`~incentive_envs.episodic.ScheduleTask` (the tax
    economy): the action is the schedule itself, ``θ ∈ [0, 1]^D`` (``Box``; PPO's Gaussian
    actions are clipped into it), posted to the task before the followers play and learn on
    their env rewards; the reward is the task's objective per episode of that batch over
    ``task.objective_scale`` (equality × productivity relative to the free market's); the
    observation is the rates just posted, the share of worker-steps at each action (labour
    level) and the scaled objective clipped to ``[0, 4]``. Parameters as
    :class:`IncentiveChoiceEnv` (``bonus_levels`` and ``cost_weight`` are unused: taxes are
    transfers).
    """

    def __init__(self, learners: PolicyGradientLearners, batch_size: int, horizon: int = 50):
        super().__init__(learners, batch_size, horizon=horizon)
        task = learners.task
        self.scale = float(task.objective_scale)
        self.action_space = spaces.Box(0.0, 1.0, (task.schedule_dim,), dtype=np.float32)
        size = task.schedule_dim + task.n_actions
        self.observation_space = spaces.Box(
            np.zeros(size + 1, dtype=np.float32),
            np.append(np.ones(size), 4.0).astype(np.float32),
            dtype=np.float32,
        )
        self._observation = np.concatenate(
            (task.schedule, np.full(task.n_actions, 1.0 / task.n_actions), [1.0])
        ).astype(np.float32)

    def step(self, action):
        learners, task = self.learners, self.learners.task
        rates = np.clip(np.asarray(action, dtype=np.float64), 0.0, 1.0)
        task.set_schedule(rates)
        rollout = learners.sample(self.batch_size, self.np_random)
        learners.step(rollout)
        self.episodes += self.batch_size
        self.last_step = iteration_metrics(rollout, task, 0.0, self.episodes)
        reward = self.last_step["objective"] / self.scale
        shares = np.bincount(rollout.actions.ravel(), minlength=task.n_actions) / rollout.actions.size
        self._observation = np.concatenate((rates, shares, [np.clip(reward, 0.0, 4.0)])).astype(np.float32)
        self._steps += 1
        return self._observation.copy(), reward, False, self._steps >= self.horizon, {}


class RLPlanner(IterativeDesigner):
    """A PPO planner choosing per-agent bonuses for prosocial events while the followers
    learn (module docstring).

    Information structure: observes each batch's action frequencies and collective return;
    knows neither the game's rules nor the followers' learning rule.

    Parameters
    ----------
    learners : PolicyGradientLearners
        The followers.
    batch_size : int
        Follower episodes per planner step.
    bonus_levels : array_like of float
        The bonus menu of every agent.
    cost_weight : float
        ``κ``, the price of a unit of bonus in the planner's reward.
    horizon : int
        Planner-episode length (PPO bookkeeping, see the module docstring).
    seed : int
        Seeds PPO (``PPO(seed=...)``: its networks, its sampling, and through ``reset`` the
        env's generator, which samples the followers' episodes).
    ppo_kwargs : dict, optional
        Override the PPO defaults (``n_steps=64, batch_size=64, n_epochs=10,
        learning_rate=1e-3, gamma=0.9, ent_coef=0.01``). Schedules are evaluated at
        progress 1 (the run has no fixed budget).
    """

    def __init__(
        self,
        learners: PolicyGradientLearners,
        *,
        batch_size: int = 128,
        bonus_levels=(0.0, 1.0, 2.0, 3.0),
        cost_weight: float = 0.01,
        horizon: int = 50,
        seed: int = 0,
        ppo_kwargs: dict | None = None,
    ):
        ppo_kwargs = dict(ppo_kwargs or {})
        clashes = sorted({"env", "seed", "policy"} & set(ppo_kwargs))
        if clashes:
            raise ValueError(f"ppo_kwargs must not set {clashes}: RLPlanner builds the env and seeds PPO")
        seed = check_seed(seed, high=MAX_LEGACY_SEED)
        if isinstance(getattr(learners, "task", None), ScheduleTask):
            _check_bonus_levels(bonus_levels)  # unused on schedules, still refused when malformed
            check_scalar(cost_weight, "cost_weight", low=0.0)
            self.env = ScheduleChoiceEnv(learners, batch_size, horizon)
        else:
            self.env = IncentiveChoiceEnv(learners, batch_size, bonus_levels, cost_weight, horizon)
        self.learners = learners
        self.vec_env = DummyVecEnv([lambda: self.env])
        settings = {
            "n_steps": 64,
            "batch_size": 64,
            "n_epochs": 10,
            "learning_rate": 1e-3,
            "gamma": 0.9,
            "ent_coef": 0.01,
            "device": "cpu",
            **ppo_kwargs,
        }
        states = (torch.get_rng_state(), np.random.get_state(), random.getstate())
        try:  # PPO(seed=...) seeds the global generators: keep its draws to itself
            self.model = PPO("MlpPolicy", self.vec_env, seed=seed, **settings)
            self._rng_states = (torch.get_rng_state(), np.random.get_state())
        finally:
            torch.set_rng_state(states[0])
            np.random.set_state(states[1])
            random.setstate(states[2])
        self.model.set_logger(Logger(folder=None, output_formats=[]))

    @property
    def episodes(self) -> int:
        return self.env.episodes

    @contextmanager
    def _own_generators(self):
        """Run with the planner's torch and NumPy global generator states, then restore the caller's."""
        torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()
        torch.set_rng_state(self._rng_states[0])
        np.random.set_state(self._rng_states[1])
        try:
            yield
        finally:
            self._rng_states = (torch.get_rng_state(), np.random.get_state())
            torch.set_rng_state(torch_state)
            np.random.set_state(numpy_state)

    def iteration(self) -> dict:
        """One planner step (one follower iteration); PPO trains whenever its buffer is full.

        Returns
        -------
        dict
            The follower iteration's metrics (:meth:`IterativeDesigner.iteration`) and
            ``"bonus"``, the bonus of every agent the planner chose.
        """
        model, buffer = self.model, self.model.rollout_buffer
        with self._own_generators():
            if model._last_obs is None:
                model._last_obs = self.vec_env.reset()
                model._last_episode_starts = np.ones(1, dtype=bool)
            model.policy.set_training_mode(False)
            with torch.no_grad():
                actions, values, log_probs = model.policy(obs_as_tensor(model._last_obs, model.device))
            actions = actions.cpu().numpy()
            observations, rewards, dones, infos = self.vec_env.step(actions)
            model.num_timesteps += 1
            if dones[0] and infos[0].get("TimeLimit.truncated", False):  # bootstrap across the cut
                terminal = model.policy.obs_to_tensor(infos[0]["terminal_observation"])[0]
                with torch.no_grad():
                    rewards[0] += model.gamma * model.policy.predict_values(terminal)[0].item()
            buffer.add(model._last_obs, actions, rewards, model._last_episode_starts, values, log_probs)
            model._last_obs, model._last_episode_starts = observations, dones
            if buffer.full:
                with torch.no_grad():
                    last_values = model.policy.predict_values(obs_as_tensor(observations, model.device))
                buffer.compute_returns_and_advantage(last_values=last_values, dones=dones)
                model.train()
                buffer.reset()
        return copy.deepcopy(self.env.last_step)

    def state_dict(self) -> dict:
        model, buffer = self.model, self.model.rollout_buffer
        return {
            "learners": self.learners.state_dict(),
            "env": self.env.state_dict(),
            "policy": copy.deepcopy(model.policy.state_dict()),
            "policy_optimizer": copy.deepcopy(model.policy.optimizer.state_dict()),
            "num_timesteps": model.num_timesteps,
            "n_updates": model._n_updates,
            "last_obs": None if model._last_obs is None else model._last_obs.copy(),
            "last_episode_starts": None
            if model._last_episode_starts is None
            else model._last_episode_starts.copy(),
            "buffer": {
                **{name: getattr(buffer, name).copy() for name in _BUFFER_FIELDS},
                "pos": buffer.pos,
                "full": buffer.full,
            },
            "generators": (self._rng_states[0].clone(), copy.deepcopy(self._rng_states[1])),
        }

    def load_state_dict(self, state: dict) -> None:
        what = "RLPlanner state"
        model, buffer = self.model, self.model.rollout_buffer
        saved_buffer = entry(state, "buffer", what)
        for name in _BUFFER_FIELDS:
            array = entry(saved_buffer, name, f"{what} 'buffer'")
            if not isinstance(array, np.ndarray) or array.shape != getattr(buffer, name).shape:
                raise ValueError(
                    f"{what} 'buffer' {name!r} must be an array of shape {getattr(buffer, name).shape}"
                )
        pos = check_int(entry(saved_buffer, "pos", what), "buffer pos", low=0, high=buffer.buffer_size)
        generators = entry(state, "generators", what)
        try:
            scratch = copy.deepcopy(model.policy)
            scratch.load_state_dict(entry(state, "policy", what))
            scratch.optimizer.load_state_dict(entry(state, "policy_optimizer", what))
            torch.Generator().set_state(generators[0])
            np.random.RandomState().set_state(generators[1])
        except (TypeError, RuntimeError, KeyError, IndexError) as error:
            raise ValueError(f"{what} does not fit this planner: {error}") from error
        num_timesteps = check_int(entry(state, "num_timesteps", what), "num_timesteps", low=0)
        n_updates = check_int(entry(state, "n_updates", what), "n_updates", low=0)
        self.learners.load_state_dict(entry(state, "learners", what))
        self.env.load_state_dict(entry(state, "env", what))
        model.policy.load_state_dict(entry(state, "policy", what))
        model.policy.optimizer.load_state_dict(copy.deepcopy(entry(state, "policy_optimizer", what)))
        model.num_timesteps, model._n_updates = num_timesteps, n_updates
        last_obs, last_starts = entry(state, "last_obs", what), entry(state, "last_episode_starts", what)
        model._last_obs = None if last_obs is None else np.array(last_obs)
        model._last_episode_starts = None if last_starts is None else np.array(last_starts)
        for name in _BUFFER_FIELDS:
            setattr(buffer, name, saved_buffer[name].copy())
        buffer.pos, buffer.full = pos, bool(entry(saved_buffer, "full", what))
        self._rng_states = (generators[0].clone(), copy.deepcopy(generators[1]))
