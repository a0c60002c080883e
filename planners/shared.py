"""One planner for many env copies: the slow timescale shared by every copy an RL library
trains on.

RL libraries train followers on many copies of an env at once (vectorised copies in
Stable-Baselines3, env runners in RLlib). Incentive design needs ONE planner that sees the
followers' play in every copy and posts one incentive to all of them:

* :class:`SharedPlanner` — the planner's side, independent of any library: it accumulates
  the joint actions played in every copy (:meth:`~SharedPlanner.record`), and every
  ``update_every`` rounds (after ``warmup`` rounds at the initial incentive) takes ONE planner
  step from their mean, ``θ ← planner.update(θ, x̄, k)``; its state (planner, incentive,
  clock, pending sums) round-trips through :meth:`~SharedPlanner.state_dict`;
* :class:`SharedPlannerVecEnv` — a Stable-Baselines3 ``VecEnv`` over ``n_copies`` copies of one
  of the suite's envs (parameter sharing: sub-env ``c·n + i`` is agent ``i`` of copy ``c``) that
  feeds a :class:`SharedPlanner` and broadcasts its incentive to every copy;
* :class:`JointActionRecorder` — a PettingZoo wrapper that sums the joint actions played in its
  env, for copies that live in other processes (RLlib env runners, :mod:`planners.rllib`).

Information structure: the planner receives the followers' joint actions (averaged over
copies and rounds) and nothing else, whatever its own information structure allows beyond
that (e.g. the model's derivatives). Episode ends do not reset the incentive or the planner.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv
from stable_baselines3.common.vec_env import VecEnv

from incentive_envs.env import IncentiveParallelEnv
from incentive_envs.validation import check_int, check_positive_int, check_seed
from planners.base import Planner


def _base(env) -> IncentiveParallelEnv:
    base = getattr(env, "unwrapped", env)
    if not isinstance(base, IncentiveParallelEnv):
        raise ValueError(
            f"env must be one of the suite's IncentiveParallelEnv envs, got {type(env).__name__}"
        )
    return base


class SharedPlanner:
    """One planner fed by the joint actions of many env copies (see the module docstring).

    Parameters
    ----------
    planner : Planner
        Bound to the game the copies play.
    update_every : int
        Rounds (joint steps of each copy) per planner update.
    warmup : int
        Rounds at the initial incentive before the first update.
    """

    def __init__(self, planner: Planner, update_every: int, warmup: int = 0):
        if not isinstance(planner, Planner):
            raise ValueError(f"planner must be a Planner, got {type(planner).__name__}")
        self.planner = planner
        self.update_every = check_positive_int(update_every, "update_every")
        self.warmup = check_int(warmup, "warmup", low=0)
        self.reset()

    @property
    def game(self):
        return self.planner.game

    def reset(self, seed: int | None = None) -> None:
        """Start over: the planner reset (and reseeded with ``seed``), its initial incentive posted."""
        self.planner.reset(seed)
        self.incentive = self.planner.initial_incentive()
        self.updates = 0
        self.rounds = 0
        self._sum = np.zeros(self.game.strategy_set.dim)
        self._count = 0

    def record(self, strategy_sum: np.ndarray, count: int, rounds: int) -> None:
        """Add ``count`` joint actions (their sum) played over ``rounds`` rounds of the copies.
        Joint actions played during the warm-up are not kept."""
        if self.rounds >= self.warmup:
            self._sum += strategy_sum
            self._count += count
        self.rounds += rounds

    def due(self) -> bool:
        """Whether an update is due (a full window of rounds recorded after the warm-up)."""
        return self.rounds >= self.warmup + (self.updates + 1) * self.update_every and self._count > 0

    def update(self) -> np.ndarray:
        """One planner step from the mean recorded joint action; returns the new incentive."""
        if self._count == 0:
            raise ValueError("no joint actions recorded since the last update")
        mean = self._sum / self._count
        self.incentive = self.planner._update(self.incentive, mean, self.updates)
        self.updates += 1
        self._sum[:] = 0.0
        self._count = 0
        return self.incentive

    def state_dict(self) -> dict:
        """JSON-serialisable state (planner state, incentive, clock, pending sums)."""
        return {
            "planner": self.planner.state_dict(),
            "incentive": self.incentive.tolist(),
            "updates": self.updates,
            "rounds": self.rounds,
            "sum": self._sum.tolist(),
            "count": self._count,
        }

    def load_state_dict(self, state: dict) -> None:
        keys = {"planner", "incentive", "updates", "rounds", "sum", "count"}
        if not isinstance(state, dict) or set(state) != keys:
            raise ValueError(f"state must have the keys {sorted(keys)}, got {state!r}"[:300])
        incentive = self.game.validate_incentive(state["incentive"], "state['incentive']")
        strategy_sum = np.asarray(state["sum"], dtype=np.float64)
        if strategy_sum.shape != self._sum.shape or not np.all(np.isfinite(strategy_sum)):
            raise ValueError(f"state['sum'] must be {self._sum.shape[0]} finite numbers")
        updates = check_int(state["updates"], "state['updates']", low=0)
        rounds = check_int(state["rounds"], "state['rounds']", low=0)
        count = check_int(state["count"], "state['count']", low=0)
        self.planner.load_state_dict(state["planner"])
        self.incentive, self._sum, self.updates, self.rounds, self._count = (
            incentive,
            strategy_sum,
            updates,
            rounds,
            count,
        )


class SharedPlannerVecEnv(VecEnv):
    """A Stable-Baselines3 ``VecEnv`` over copies of one of the suite's envs, all steered by one
    :class:`SharedPlanner` (module docstring).

    Sub-env ``j`` is agent ``j % n_agents`` of copy ``j // n_agents`` (parameter sharing: one
    policy for all agents of all copies). Each step plays every copy once through the envs'
    array path (:meth:`~incentive_envs.env.IncentiveParallelEnv.step_arrays`), records the joint
    actions, and when an update is due steps the planner once and posts the incentive to every
    copy from the next round on. Episodes restart automatically; following SB3's conventions
    the last observation of an episode is in ``infos[j]["terminal_observation"]``,
    ``infos[j]["TimeLimit.truncated"]`` marks truncation (so PPO bootstraps) and the reset
    infos are kept apart in :attr:`reset_infos`. :meth:`seed` seeds copy ``c`` with
    ``seed + c`` and the planner with ``seed``.

    Parameters
    ----------
    env_fn : callable
        ``env_fn()`` builds one copy (all agents share observation and action spaces).
    n_copies : int
    shared : SharedPlanner
        On the copies' game (``shared.game is copy.game`` is not required, but it must be the
        same model: it is checked by dimension).
    """

    def __init__(self, env_fn, n_copies: int, shared: SharedPlanner):
        n_copies = check_positive_int(n_copies, "n_copies", 100_000)
        if not isinstance(shared, SharedPlanner):
            raise ValueError(f"shared must be a SharedPlanner, got {type(shared).__name__}")
        self.copies = [_base(env_fn()) for _ in range(n_copies)]
        first = self.copies[0]
        if first.game.strategy_set.dim != shared.game.strategy_set.dim or (
            first.game.incentive_set.dim != shared.game.incentive_set.dim
        ):
            raise ValueError("the shared planner's game does not match the copies' game")
        self.shared = shared
        self.n_agents = len(first.possible_agents)
        agent = first.possible_agents[0]
        self._next_seed: int | None = None
        self._actions: np.ndarray | None = None
        super().__init__(n_copies * self.n_agents, first.observation_space(agent), first.action_space(agent))
        self._broadcast()

    def _broadcast(self) -> None:
        for copy in self.copies:
            copy.set_incentive(self.shared.incentive)

    @property
    def incentive(self) -> np.ndarray:
        """The incentive in force in every copy."""
        return self.shared.incentive.copy()

    def seed(self, seed: int | None = None) -> list[int | None]:
        """Seed the next :meth:`reset`: copy ``c`` with ``seed + c``; the planner starts over,
        reseeded with ``seed``."""
        if seed is None:
            return [None] * self.num_envs
        self._next_seed = check_seed(seed)
        return [self._next_seed + j // self.n_agents for j in range(self.num_envs)]

    def reset(self) -> np.ndarray:
        seed, self._next_seed = self._next_seed, None
        if seed is not None:
            self.shared.reset(seed)
            self._broadcast()
        observations, self.reset_infos = [], []
        for index, copy in enumerate(self.copies):
            obs, infos = copy.reset(seed=None if seed is None else seed + index)
            observations.append(np.stack([obs[agent] for agent in copy.possible_agents]))
            self.reset_infos.extend(infos[agent] for agent in copy.possible_agents)
        return np.concatenate(observations)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self):
        actions = self._actions.reshape(len(self.copies), self.n_agents, -1)
        observations, rewards, finished = [], [], []
        strategy_sum = np.zeros(self.shared.game.strategy_set.dim)
        for index, copy in enumerate(self.copies):
            obs, reward, truncated = copy.step_arrays(actions[index])
            strategy_sum += copy._strategy
            observations.append(obs)
            rewards.append(reward)
            if truncated:
                finished.append(index)
        self.shared.record(strategy_sum, len(self.copies), 1)
        if self.shared.due():  # before any reset: a new episode starts under the new incentive
            self.shared.update()
            self._broadcast()
        dones = np.zeros(self.num_envs, dtype=bool)
        infos = [{} for _ in range(self.num_envs)]
        for index in finished:
            block = range(index * self.n_agents, (index + 1) * self.n_agents)
            dones[block.start : block.stop] = True
            for j, terminal in zip(block, observations[index]):
                infos[j]["terminal_observation"] = terminal
                infos[j]["TimeLimit.truncated"] = True
            copy = self.copies[index]
            reset_obs, _ = copy.reset()
            observations[index] = np.stack([reset_obs[agent] for agent in copy.possible_agents])
        return np.concatenate(observations), np.concatenate(rewards).astype(np.float32), dones, infos

    def close(self) -> None:
        for copy in self.copies:
            copy.close()

    def get_attr(self, attr_name: str, indices=None) -> list:
        """``attr_name`` of the copy each listed sub-env belongs to."""
        return [getattr(self.copies[j // self.n_agents], attr_name) for j in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value, indices=None) -> None:
        """Set ``attr_name`` on every copy holding a listed sub-env."""
        for c in sorted({j // self.n_agents for j in self._get_indices(indices)}):
            setattr(self.copies[c], attr_name, value)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list:
        """Call ``method_name`` once per copy holding a listed sub-env (one result per sub-env)."""
        copies = [j // self.n_agents for j in self._get_indices(indices)]
        results = {
            c: getattr(self.copies[c], method_name)(*method_args, **method_kwargs)
            for c in sorted(set(copies))
        }
        return [results[c] for c in copies]

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]


class JointActionRecorder(ParallelEnv):
    """A PettingZoo wrapper that sums the joint actions played in its env since the last
    :meth:`collect` (for env copies in other processes, such as RLlib env runners) and passes
    :meth:`set_incentive` through. Everything else is the wrapped env's.

    Parameters
    ----------
    env : IncentiveParallelEnv
    """

    def __init__(self, env):
        self.env = env
        self._base = _base(env)
        self.possible_agents = list(env.possible_agents)
        self.metadata = env.metadata
        self.render_mode = env.render_mode
        self._sum = np.zeros(self._base.game.strategy_set.dim)
        self._count = 0
        self.incentives_received: list[list[float]] = []
        """Every incentive posted through :meth:`set_incentive`, in order."""

    @property
    def agents(self) -> list[str]:
        return self.env.agents

    @property
    def unwrapped(self):
        return self._base

    def observation_space(self, agent: str) -> spaces.Space:
        return self.env.observation_space(agent)

    def action_space(self, agent: str) -> spaces.Space:
        return self.env.action_space(agent)

    @property
    def state_space(self):
        return self._base.state_space

    def state(self) -> np.ndarray:
        return self._base.state()

    def reset(self, seed: int | None = None, options: dict | None = None):
        return self.env.reset(seed=seed, options=options)

    def step(self, actions: dict):
        result = self.env.step(actions)
        self._sum += self._base._strategy
        self._count += 1
        return result

    def collect(self) -> tuple[np.ndarray, int]:
        """``(sum of the joint actions played, how many)`` since the last call, then zero them."""
        recorded = (self._sum.copy(), self._count)
        self._sum[:] = 0.0
        self._count = 0
        return recorded

    def set_incentive(self, incentive) -> None:
        self._base.set_incentive(incentive)
        self.incentives_received.append(self._base.incentive.tolist())

    def render(self):
        return self.env.render()

    def close(self) -> None:
        self.env.close()
