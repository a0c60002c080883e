"""Deep-RL followers: Stable-Baselines3 PPO on the suite's PettingZoo envs, reproducibly.

Parameter sharing goes through SuperSuit: ``pettingzoo_env_to_vec_env_v1`` turns a
``ParallelEnv`` into a vector env with one sub-env per agent, and ``concat_vec_envs_v1``
stacks ``n_envs`` copies of it. SuperSuit's own Stable-Baselines3 wrapper cannot be seeded:
``PPO(..., seed=s)`` calls ``env.seed(s)``, which SB3's ``VecEnvWrapper`` forwards to the
wrapped ``ConcatVecEnv`` — a gymnasium vector env without a ``seed`` method — and the
constructor fails with ``AttributeError: 'ConcatVecEnv' object has no attribute 'seed'``
(``reset(seed=...)`` of that wrapper fails the same way). :class:`SuperSuitVecEnv` replaces
that wrapper: it is an SB3 ``VecEnv`` over the same SuperSuit vector env whose
:meth:`~SuperSuitVecEnv.seed` stores the seed and passes it to the next ``reset``, where
SuperSuit gives copy ``c`` the seed ``seed + c`` (every agent of a copy shares its env).

Independent learners (one PPO per agent) train round-robin, see :func:`train_ppo`.
"""

from __future__ import annotations

import copy

import gymnasium
import numpy as np
import supersuit as ss
from pettingzoo import ParallelEnv
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from incentive_envs.validation import MAX_LEGACY_SEED, check_positive_int, check_seed


def _check_parallel_env(parallel_env) -> None:
    if not isinstance(parallel_env, ParallelEnv):
        raise ValueError(f"parallel_env must be a pettingzoo ParallelEnv, got {type(parallel_env).__name__}")


class SuperSuitVecEnv(VecEnv):
    """A seedable SB3 ``VecEnv`` over ``n_envs`` SuperSuit copies of a ParallelEnv.

    Sub-env ``j`` is agent ``j % n_agents`` of copy ``j // n_agents``. Episodes restart
    automatically (SuperSuit's ``MarkovVectorEnv``) and the last observation of an episode
    is in ``infos[j]["terminal_observation"]``; truncated, not terminated, episodes are
    flagged with ``infos[j]["TimeLimit.truncated"]`` so that PPO bootstraps their value.

    Parameters
    ----------
    parallel_env : pettingzoo.ParallelEnv
        Copied ``n_envs`` times (SuperSuit pickles it); all agents must share their spaces.
    n_envs : int
        Number of copies.
    """

    def __init__(self, parallel_env: ParallelEnv, n_envs: int = 1):
        _check_parallel_env(parallel_env)
        n_envs = check_positive_int(n_envs, "n_envs")
        self._vector_env = ss.concat_vec_envs_v1(
            ss.pettingzoo_env_to_vec_env_v1(parallel_env), n_envs, num_cpus=0, base_class="gymnasium"
        )
        self._copies = [markov_env.par_env for markov_env in self._vector_env.vec_envs]
        self._agents_per_copy = len(parallel_env.possible_agents)
        self._next_seed: int | None = None
        self._next_options: dict | None = None
        self._actions = None
        super().__init__(
            self._vector_env.num_envs, self._vector_env.observation_space, self._vector_env.action_space
        )

    @property
    def envs(self) -> list[ParallelEnv]:
        """The parallel-env copies, in sub-env order (copy ``c`` holds sub-envs
        ``c * n_agents … (c + 1) * n_agents − 1``)."""
        return list(self._copies)

    def seed(self, seed: int | None = None) -> list[int]:
        """Seed the next ``reset``: copy ``c`` is reset with ``seed + c``.

        Parameters
        ----------
        seed : int, optional
            In ``[0, 2**32)``; ``None`` draws a fresh one from OS entropy.

        Returns
        -------
        list of int
            The seed each sub-env's copy will be reset with.
        """
        if seed is None:
            seed = int(np.random.default_rng().integers(np.iinfo(np.uint32).max))
        self._next_seed = check_seed(seed, high=MAX_LEGACY_SEED)
        return [self._next_seed + j // self._agents_per_copy for j in range(self.num_envs)]

    def set_options(self, options: dict | None = None) -> None:
        """Pass ``options`` to every copy's next ``reset`` (one dict: agents of a copy share it)."""
        if options is not None and not isinstance(options, dict):
            raise ValueError(f"options must be a dict applied to every copy, got {type(options).__name__}")
        self._next_options = options

    def reset(self) -> np.ndarray:
        observations, infos = self._vector_env.reset(seed=self._next_seed, options=self._next_options)
        self.reset_infos = list(infos)
        self._next_seed, self._next_options = None, None
        return observations

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self):
        observations, rewards, terminations, truncations, infos = self._vector_env.step(self._actions)
        terminations, truncations = terminations.astype(bool), truncations.astype(bool)
        for info, terminated, truncated in zip(infos, terminations, truncations):
            info["TimeLimit.truncated"] = bool(truncated and not terminated)
        return observations, rewards, terminations | truncations, infos

    def close(self) -> None:
        self._vector_env.close()

    def _copy_indices(self, indices) -> list[int]:
        return [j // self._agents_per_copy for j in self._get_indices(indices)]

    def get_attr(self, attr_name: str, indices=None) -> list:
        """``attr_name`` of the copy each listed sub-env belongs to."""
        return [getattr(self._copies[c], attr_name) for c in self._copy_indices(indices)]

    def set_attr(self, attr_name: str, value, indices=None) -> None:
        """Set ``attr_name`` on every copy holding a listed sub-env (once per copy)."""
        for c in sorted(set(self._copy_indices(indices))):
            setattr(self._copies[c], attr_name, value)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list:
        """Call ``method_name`` once on every copy holding a listed sub-env; one result per
        listed sub-env (agents of one copy share its result)."""
        copies = self._copy_indices(indices)
        results = {
            c: getattr(self._copies[c], method_name)(*method_args, **method_kwargs)
            for c in sorted(set(copies))
        }
        return [results[c] for c in copies]

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        """Always false: the copies are PettingZoo envs, not gymnasium wrappers."""
        return [False for _ in self._get_indices(indices)]


def make_vec_env(parallel_env: ParallelEnv, n_envs: int = 1, seed: int | None = None) -> SuperSuitVecEnv:
    """An SB3 ``VecEnv`` sharing one policy among all agents of ``parallel_env``.

    Parameters
    ----------
    parallel_env : pettingzoo.ParallelEnv
        All agents must have the same observation and action spaces.
    n_envs : int
        Copies of the env; the vec env has ``n_envs * n_agents`` sub-envs.
    seed : int, optional
        Seeds the first ``reset`` (see :meth:`SuperSuitVecEnv.seed`). ``PPO(..., seed=s)``
        re-seeds it with ``s``.
    """
    vec_env = SuperSuitVecEnv(parallel_env, n_envs)
    if seed is not None:
        vec_env.seed(seed)
    return vec_env


class AgentView(gymnasium.Env):
    """One agent's single-agent view of a ParallelEnv whose other agents follow ``policies``.

    ``policies[agent]`` is any object with SB3's ``predict(observation, deterministic)``;
    the others sample their actions from it (``deterministic=False``) at every step. The
    dict is read at every step, so it may be filled or updated after construction. Episodes
    end when the viewing agent is terminated or truncated.

    Parameters
    ----------
    parallel_env : pettingzoo.ParallelEnv
        Used (and stepped) by this view only.
    agent : str
        The viewing agent, one of ``parallel_env.possible_agents``.
    policies : dict
        The policies of the other agents.
    """

    def __init__(self, parallel_env: ParallelEnv, agent: str, policies: dict):
        _check_parallel_env(parallel_env)
        if agent not in parallel_env.possible_agents:
            raise ValueError(f"agent must be one of {parallel_env.possible_agents[:5]}…, got {agent!r}")
        self.parallel_env = parallel_env
        self.agent = agent
        self.policies = policies
        self.observation_space = parallel_env.observation_space(agent)
        self.action_space = parallel_env.action_space(agent)
        self.metadata = parallel_env.metadata
        self.render_mode = parallel_env.render_mode
        self._observations: dict = {}

    def reset(self, seed: int | None = None, options: dict | None = None):
        self._observations, infos = self.parallel_env.reset(seed=seed, options=options)
        return self._observations[self.agent], infos[self.agent]

    def step(self, action):
        actions = {
            other: self.policies[other].predict(self._observations[other], deterministic=False)[0]
            for other in self.parallel_env.agents
            if other != self.agent
        }
        actions[self.agent] = action
        observations, rewards, terminations, truncations, infos = self.parallel_env.step(actions)
        self._observations = observations
        return (
            observations[self.agent],
            rewards[self.agent],
            terminations[self.agent],
            truncations[self.agent],
            infos[self.agent],
        )

    def render(self):
        return self.parallel_env.render()

    def close(self) -> None:
        self.parallel_env.close()


def train_ppo(
    parallel_env: ParallelEnv,
    total_timesteps: int,
    seed: int,
    n_envs: int = 1,
    independent: bool = False,
    **ppo_kwargs,
) -> PPO | dict[str, PPO]:
    """Train PPO followers on ``parallel_env``, reproducibly under ``seed``.

    Parameter sharing (default): one PPO on :func:`make_vec_env`, i.e. every agent's
    experience trains the same policy; ``total_timesteps`` counts agent-steps (each env
    step of a copy contributes ``n_agents`` of them).

    Independent learners (``independent=True``): one PPO per agent, agent ``k`` seeded with
    ``seed + k``, each on ``n_envs`` private copies of the env seen through
    :class:`AgentView`. Training is round-robin: in every round each agent in turn collects
    one rollout (``n_steps * n_envs`` steps) and updates, while the other agents act by
    sampling from their current, frozen, policies; rounds repeat until every agent has
    ``total_timesteps`` steps of its own experience. Learning-rate and clip-range schedules
    restart their progress each round, so use constants there.

    Parameters
    ----------
    parallel_env : pettingzoo.ParallelEnv
        Copied, never stepped itself.
    total_timesteps : int
        Training steps (see above); SB3 rounds up to whole rollouts.
    seed : int
        In ``[0, 2**32)``: seeds PPO (Python, NumPy, PyTorch, the action space) and the env resets.
    n_envs : int
        Env copies per PPO.
    independent : bool
        One PPO per agent instead of one shared PPO.
    **ppo_kwargs
        Passed to ``stable_baselines3.PPO``; ``policy`` defaults to ``"MlpPolicy"``.

    Returns
    -------
    PPO or dict of str to PPO
        The shared model, or one model per agent (keyed by agent name).
    """
    _check_parallel_env(parallel_env)
    total_timesteps = check_positive_int(total_timesteps, "total_timesteps")
    seed = check_seed(seed, high=MAX_LEGACY_SEED)
    n_envs = check_positive_int(n_envs, "n_envs")
    clashes = sorted({"env", "seed"} & set(ppo_kwargs))
    if clashes:
        raise ValueError(f"ppo_kwargs must not set {clashes}: train_ppo builds the env and seeds PPO itself")
    policy = ppo_kwargs.pop("policy", "MlpPolicy")
    if not independent:
        model = PPO(policy, make_vec_env(parallel_env, n_envs), seed=seed, **ppo_kwargs)
        return model.learn(total_timesteps)
    models: dict[str, PPO] = {}
    for k, agent in enumerate(parallel_env.possible_agents):
        views = [AgentView(copy.deepcopy(parallel_env), agent, models) for _ in range(n_envs)]
        models[agent] = PPO(
            policy, DummyVecEnv([lambda view=view: view for view in views]), seed=seed + k, **ppo_kwargs
        )
    while any(model.num_timesteps < total_timesteps for model in models.values()):
        for model in models.values():
            if model.num_timesteps < total_timesteps:
                model.learn(model.n_steps * model.n_envs, reset_num_timesteps=False)
    return models
