"""The "dual RL" baseline: a PPO planner that learns which lever bonus to pay on ER(N, M).

The planner is a Stable-Baselines3 PPO agent acting on :class:`IncentiveChoiceEnv`, a
gymnasium env whose one step is one learning iteration of the followers:

* action: a bonus level per agent, ``MultiDiscrete([K] * N)`` indexing ``bonus_levels``
  (default ``0, 1, 2, 3``); agent ``i`` is paid its bonus at every step in which it picks
  the lever;
* the step: the followers (:class:`~agents.policy_gradient.PolicyGradientLearners`) play a
  batch of ``B`` episodes, are paid the bonuses and take one REINFORCE step on env reward
  plus bonus;
* reward: the planner objective per episode of that batch, ``(welfare − κ · paid) / |W*|``
  (welfare = total env reward of an episode, ``W*`` = :func:`~incentive_envs.escape_room.game.optimum`);
* observation: what the planner saw of the batch — each agent's action frequencies over the
  played steps (``3N`` entries) and ``welfare / |W*|`` clipped to ``[−2, 1]``.

The followers learn simultaneously and are never reset: the planner faces one long learning
process, cut into episodes of ``horizon`` iterations only as PPO's bookkeeping unit
(truncated, so PPO bootstraps across the cut). The planner thus learns online, from the
same follower episodes the meta-gradient designer gets, with no knowledge of the game or
of the learning rule.
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium
import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv

from agents.policy_gradient import PolicyGradientLearners
from incentive_envs.escape_room.game import LEVER, N_POSITIONS, optimum
from incentive_envs.validation import as_finite_array, check_positive_int, check_scalar


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
    history : dict of str to list
        Per step: ``"welfare"``, ``"incentive_paid"`` (per follower episode), ``"episodes"``
        (played so far) and ``"bonus"`` (the chosen bonus of every agent).
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
        self.bonus_levels = as_finite_array(bonus_levels, "bonus_levels")
        if self.bonus_levels.ndim != 1 or self.bonus_levels.size < 2 or np.any(self.bonus_levels < 0):
            raise ValueError(f"bonus_levels must be >= 2 non-negative numbers, got {bonus_levels!r}")
        self.cost_weight = check_scalar(cost_weight, "cost_weight", low=0.0)
        self.horizon = check_positive_int(horizon, "horizon")
        self.scale = abs(optimum(learners.n_agents, learners.threshold))
        n = learners.n_agents
        self.action_space = spaces.MultiDiscrete([self.bonus_levels.size] * n)
        low = np.append(np.zeros(N_POSITIONS * n), -2.0).astype(np.float32)
        self.observation_space = spaces.Box(low, np.ones_like(low), dtype=np.float32)
        self.history: dict[str, list] = {"welfare": [], "incentive_paid": [], "episodes": [], "bonus": []}
        self._observation = np.append(np.full(N_POSITIONS * n, 1.0 / N_POSITIONS), 0.0).astype(np.float32)
        self._steps = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start a planner episode; the followers keep learning where they are. ``seed``
        seeds :attr:`np_random`, which samples the followers' actions."""
        super().reset(seed=seed)
        self._steps = 0
        return self._observation.copy(), {}

    def step(self, action):
        bonus = self.bonus_levels[np.asarray(action, dtype=np.int64)]
        learners = self.learners
        rollout = learners.sample(self.batch_size, self.np_random)
        paid = bonus * ((rollout.actions == LEVER) & rollout.alive[..., None])
        learners.step(rollout, torch.as_tensor(rollout.env_rewards + paid, dtype=learners.dtype))
        welfare = float(rollout.welfare().mean())
        paid_per_episode = float(paid.sum()) / self.batch_size
        history = self.history
        history["welfare"].append(welfare)
        history["incentive_paid"].append(paid_per_episode)
        history["episodes"].append(self.batch_size * (len(history["episodes"]) + 1))
        history["bonus"].append(bonus.tolist())
        self._observation = np.append(
            rollout.action_frequencies().ravel(), np.clip(welfare / self.scale, -2.0, 1.0)
        ).astype(np.float32)
        self._steps += 1
        reward = (welfare - self.cost_weight * paid_per_episode) / self.scale
        return self._observation.copy(), reward, False, self._steps >= self.horizon, {}


class _StopAfter(BaseCallback):
    """Stops PPO after ``steps`` env steps, calling ``progress`` after each."""

    def __init__(self, steps: int, progress: Callable[[], object] | None):
        super().__init__()
        self.steps, self.progress = steps, progress

    def _on_step(self) -> bool:
        if self.progress is not None:
            self.progress()
        return self.num_timesteps < self.steps


class RLPlanner:
    """A PPO planner choosing per-agent lever bonuses while the followers learn (module docstring).

    Information structure: observes each batch's action frequencies and welfare; knows
    neither the game's rules nor the followers' learning rule.

    Parameters
    ----------
    n_agents, threshold : int
        ``N`` and ``M``.
    batch_size : int
        Follower episodes per planner step.
    learner_lr : float
        The followers' learning rate.
    bonus_levels : array_like of float
        The bonus menu of every agent.
    cost_weight : float
        ``κ``, the price of a unit of bonus in the planner's reward.
    horizon : int
        Planner-episode length (PPO bookkeeping, see the module docstring).
    max_steps : int
        Follower episode length ``T``.
    seed : int
        Seeds the followers' initial policies, PPO (``PPO(seed=...)``, which also seeds the
        env's generator through ``reset``).
    ppo_kwargs : dict, optional
        Override the PPO defaults (``n_steps=64, batch_size=64, n_epochs=10,
        learning_rate=1e-3, gamma=0.9, ent_coef=0.01``).
    """

    def __init__(
        self,
        n_agents: int,
        threshold: int,
        *,
        batch_size: int = 128,
        learner_lr: float = 0.01,
        bonus_levels=(0.0, 1.0, 2.0, 3.0),
        cost_weight: float = 0.01,
        horizon: int = 50,
        max_steps: int = 5,
        seed: int = 0,
        ppo_kwargs: dict | None = None,
    ):
        ppo_kwargs = dict(ppo_kwargs or {})
        clashes = sorted({"env", "seed", "policy"} & set(ppo_kwargs))
        if clashes:
            raise ValueError(f"ppo_kwargs must not set {clashes}: RLPlanner builds the env and seeds PPO")
        learner_seed, ppo_seed = np.random.SeedSequence(seed).generate_state(2)
        learners = PolicyGradientLearners(
            n_agents, threshold, learner_lr, max_steps=max_steps, seed=int(learner_seed)
        )
        self.env = IncentiveChoiceEnv(learners, batch_size, bonus_levels, cost_weight, horizon)
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
        self.model = PPO("MlpPolicy", DummyVecEnv([lambda: self.env]), seed=int(ppo_seed), **settings)

    def train(self, iterations: int, progress: Callable[[], object] | None = None) -> dict[str, np.ndarray]:
        """Run ``iterations`` planner steps (follower iterations) of online PPO training.

        Returns
        -------
        dict of str to ndarray
            The env's :attr:`~IncentiveChoiceEnv.history` of this call's steps.
        """
        iterations = check_positive_int(iterations, "iterations")
        start = len(self.env.history["welfare"])
        stop = _StopAfter(self.model.num_timesteps + iterations, progress)
        self.model.learn(iterations, callback=stop, reset_num_timesteps=False)
        return {key: np.asarray(value[start:]) for key, value in self.env.history.items()}
