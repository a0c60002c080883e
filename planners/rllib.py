"""RLlib (new API stack) integration: every registered env in one call, and one planner on the
driver steering followers trained across all env runners, local or remote.

* :func:`register_envs` registers every env of :func:`incentive_envs.registry` with RLlib as
  ``"incentive_envs/<env_id>"`` (through RLlib's ``ParallelPettingZooEnv``); the env config
  is the env's parameters (``env_config={"n_firms": 10, "k": 1.0}``). Model games are wrapped
  in a :class:`~planners.shared.JointActionRecorder`, which sums the joint actions played.
* :func:`with_shared_planner` turns an algorithm class (e.g. ``PPO``) into one whose every
  training iteration is followed by the planner's slow-timescale step: the driver collects the
  joint actions every env runner recorded during the iteration's sampling (``foreach_env_runner``),
  a :class:`~planners.shared.SharedPlanner` takes one step from their mean every
  ``update_every`` iterations, and the new incentive is pushed to every env of every runner
  before the next sampling, so all runners play the same incentive sequence. The planner's
  state is part of the algorithm's state (``get_state``/``set_state``), hence of its
  checkpoints (``save_to_path``/``restore_from_path``).
* :func:`recorders` lists an env runner's joint-action recorders, for functions run on every
  runner (``foreach_env_runner``) that read what its envs received or played.

Information structure: the planner receives the followers' joint actions averaged over all
env runners and env steps of a training iteration.

Actions: the suite's envs refuse out-of-bound actions (nothing is silently clipped). RLlib's
``normalize_actions=True`` (its default) has the policy act in a normalised space and maps
actions affinely onto the env's bounds, clipping them there, before ``env.step``;
``clip_actions=True`` clips as well when normalisation is off. Keep one of them on.

Example::

    import ray
    from ray.rllib.algorithms.ppo import PPO, PPOConfig
    from planners.rllib import register_envs, with_shared_planner
    from planners import SocialGradientPlanner

    ray.init(num_cpus=2)
    register_envs()
    config = (
        PPOConfig(algo_class=with_shared_planner(PPO, "cournot_v0", lambda game: SocialGradientPlanner(game, 0.1)))
        .environment(
            "incentive_envs/cournot_v0",
            env_config={"n_firms": 10, "k": 1.0},
            normalize_actions=True,
            clip_actions=True,
        )
        .multi_agent(policies={"shared"}, policy_mapping_fn=lambda agent_id, episode, **kwargs: "shared")
        .env_runners(num_env_runners=2)
    )
    algorithm = config.build_algo()
    algorithm.train()
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from incentive_envs.registry import registry, spec
from incentive_envs.validation import check_int, check_positive_int
from planners.shared import JointActionRecorder, SharedPlanner

PREFIX = "incentive_envs/"
"""Prefix of the env names :func:`register_envs` registers."""

PLANNER_COMPONENT = "incentive_planner"
"""Key of the shared planner's state in the algorithm's state."""


def _env_creator(env_spec):
    def create(config):
        from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv

        env = env_spec.make_env(**dict(config))
        if "model" in env_spec.capabilities:
            env = JointActionRecorder(env)
        return ParallelPettingZooEnv(env)

    return create


def register_envs() -> list[str]:
    """Register every env of the registry with RLlib; returns the names (``incentive_envs/<env_id>``)."""
    from ray.tune.registry import register_env

    names = []
    for env_spec in registry().values():
        register_env(PREFIX + env_spec.env_id, _env_creator(env_spec))
        names.append(PREFIX + env_spec.env_id)
    return names


def recorders(env_runner) -> list[JointActionRecorder]:
    """The joint-action recorders of one env runner's envs (none on a runner without envs).

    For functions run on every env runner (``algorithm.env_runner_group.foreach_env_runner``),
    e.g. to read what each runner's envs received or recorded."""
    env = getattr(env_runner, "env", None)
    if env is None:
        return []
    found = []
    for sub_env in getattr(env, "envs", [env]):
        wrapped = getattr(sub_env.unwrapped, "par_env", None)
        if isinstance(wrapped, JointActionRecorder):
            found.append(wrapped)
    return found


def _collect(env_runner) -> tuple[np.ndarray | None, int]:
    total, count = None, 0
    for recorder in recorders(env_runner):
        strategy_sum, recorded = recorder.collect()
        total = strategy_sum if total is None else total + strategy_sum
        count += recorded
    return total, count


def _post(incentive: list[float]):
    def post(env_runner) -> int:
        found = recorders(env_runner)
        for recorder in found:
            recorder.set_incentive(np.asarray(incentive))
        return len(found)

    return post


def with_shared_planner(
    algorithm_class: type,
    env_id: str,
    make_planner: Callable,
    *,
    update_every: int = 1,
    warmup: int = 0,
) -> type:
    """A subclass of ``algorithm_class`` with one shared planner (see the module docstring).

    Parameters
    ----------
    algorithm_class : type
        An RLlib ``Algorithm`` subclass (``PPO``…), new API stack.
    env_id : str
        The registered env the algorithm trains on (its env config builds the planner's game).
    make_planner : callable
        ``make_planner(game) -> Planner`` on the game model of the env's config.
    update_every : int
        Training iterations per planner step.
    warmup : int
        Training iterations at the initial incentive before the first step.
    """
    env_spec = spec(env_id)
    if "model" not in env_spec.capabilities:
        raise ValueError(f"a shared planner needs a game with a model; {env_spec.env_id} has none")
    update_every = check_positive_int(update_every, "update_every")
    warmup = check_int(warmup, "warmup", low=0)

    class SharedPlannerAlgorithm(algorithm_class):
        """``algorithm_class`` followed, every training iteration, by the shared planner's step."""

        def setup(self, config) -> None:
            super().setup(config)
            game = env_spec.make_game(
                **{
                    key: value
                    for key, value in dict(self.config.env_config).items()
                    if key not in env_spec.env_only_parameters
                }
            )
            self.shared_planner = SharedPlanner(make_planner(game), update_every, warmup)
            self.post_incentive()

        def post_incentive(self) -> None:
            """Push the shared planner's incentive to every env of every env runner."""
            self.env_runner_group.foreach_env_runner(_post(self.shared_planner.incentive.tolist()))

        def training_step(self):
            result = super().training_step()
            collected = self.env_runner_group.foreach_env_runner(_collect)
            sums = [strategy_sum for strategy_sum, count in collected if count]
            count = sum(count for _, count in collected)
            total = np.sum(sums, axis=0) if sums else np.zeros(self.shared_planner.game.strategy_set.dim)
            self.shared_planner.record(total, count, 1)
            if self.shared_planner.due():
                self.shared_planner.update()
                self.post_incentive()
            return result

        def get_state(self, components=None, *, not_components=None, **kwargs):
            state = super().get_state(components, not_components=not_components, **kwargs)
            if self._check_component(PLANNER_COMPONENT, components, not_components):
                state[PLANNER_COMPONENT] = self.shared_planner.state_dict()
            return state

        def set_state(self, state) -> None:
            super().set_state(state)
            if PLANNER_COMPONENT in state:
                self.shared_planner.load_state_dict(state[PLANNER_COMPONENT])
                self.post_incentive()

    SharedPlannerAlgorithm.__name__ = f"{algorithm_class.__name__}WithSharedPlanner"
    SharedPlannerAlgorithm.__qualname__ = SharedPlannerAlgorithm.__name__
    return SharedPlannerAlgorithm
