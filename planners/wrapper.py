"""Slow-timescale incentives inside any env: a PettingZoo wrapper that runs a planner.

``PlannerWrapper(env, planner, update_every=K)`` is itself a ``ParallelEnv``. Followers —
our learners, or RL libraries through SuperSuit — act in it exactly as in the bare env,
while every ``K`` rounds the planner observes the joint action just played and the incentive
that was in force, computes ``θ ← planner.update(θ, x, k)`` and posts it with
``env.set_incentive`` so it applies from the next round on. The step in which the update
happens returns the wrapped env's observations, which show the incentive of the round just
played; the next round's observations show the new one. Each agent's ``infos`` gain
``"planner_iteration"``: how many planner updates have happened so far.

The slow timescale outlives episodes: RL libraries reset an env at every episode end, and
``reset()`` keeps the incentive in force, the planner's state and its update counter.
``reset(seed=s)`` starts over reproducibly — the planner is reset and reseeded with ``s`` and
its initial incentive is posted — and ``reset(options={"incentive": θ})`` posts ``θ`` while
keeping the planner's state.

What the planner may use beyond the joint action is its own information structure
(documented on each planner): the wrapper gives it nothing else.
"""

from __future__ import annotations

import numpy as np
from pettingzoo import ParallelEnv

from incentive_envs.env import IncentiveParallelEnv
from planners.base import Planner


class PlannerWrapper(ParallelEnv):
    """Apply ``planner`` every ``update_every`` steps of ``env`` (see the module docstring).

    Parameters
    ----------
    env : IncentiveParallelEnv
        One of the suite's environments.
    planner : Planner
        Bound to the same game object as ``env`` (``planner.game is env.game``).
    update_every : int
        ``K >= 1``: env rounds per planner update.
    """

    def __init__(self, env: IncentiveParallelEnv, planner: Planner, update_every: int):
        base = getattr(env, "unwrapped", env)
        if not isinstance(base, IncentiveParallelEnv):
            raise ValueError(
                f"env must be one of the suite's IncentiveParallelEnv envs, got {type(env).__name__}"
            )
        if not isinstance(planner, Planner):
            raise ValueError(f"planner must be a Planner, got {type(planner).__name__}")
        if planner.game is not base.game:
            raise ValueError("planner must be built on the env's own game model (planner.game is env.game)")
        if (
            isinstance(update_every, bool)
            or not isinstance(update_every, (int, np.integer))
            or update_every < 1
        ):
            raise ValueError(f"update_every must be a positive integer, got {update_every!r}")
        self.env = env
        self._base = base
        self.planner = planner
        self.update_every = int(update_every)
        self.possible_agents = list(env.possible_agents)
        self.metadata = {**env.metadata, "name": f"{env.metadata.get('name', 'env')}_planner"}
        self.render_mode = env.render_mode
        self.planner_iterations = 0
        self._steps = 0
        self._started = False

    @property
    def agents(self) -> list[str]:
        return self.env.agents

    @property
    def game(self):
        return self._base.game

    @property
    def incentive(self) -> np.ndarray:
        """The incentive in force for the next round."""
        return self._base.incentive

    @property
    def unwrapped(self):
        return self._base

    @property
    def state_space(self):
        return self._base.state_space

    def state(self) -> np.ndarray:
        return self._base.state()

    def observation_space(self, agent: str):
        return self.env.observation_space(agent)

    def action_space(self, agent: str):
        return self.env.action_space(agent)

    def reset(self, seed: int | None = None, options: dict | None = None):
        """Start an episode (see the module docstring for what persists across episodes)."""
        options = dict(options or {})
        restart = seed is not None or not self._started
        if restart:
            self.planner.reset(seed)
            options.setdefault("incentive", self.planner.initial_incentive())
        observations, infos = self.env.reset(seed=seed, options=options)
        if restart:
            self._steps = 0
            self.planner_iterations = 0
            self._started = True
        return observations, self._tag(infos)

    def step(self, actions: dict):
        observations, rewards, terminations, truncations, infos = self.env.step(actions)
        self._steps += 1
        if self._steps % self.update_every == 0:
            theta = self.planner._update(self._base.incentive, self._base.strategy, self.planner_iterations)
            self._base.set_incentive(theta)
            self.planner_iterations += 1
        return observations, rewards, terminations, truncations, self._tag(infos)

    def _tag(self, infos: dict) -> dict:
        return {
            agent: {**info, "planner_iteration": self.planner_iterations} for agent, info in infos.items()
        }

    def render(self):
        return self.env.render()

    def close(self) -> None:
        self.env.close()
