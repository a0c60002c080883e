"""RLlib followers at scale: one planner on the driver steering PPO firms trained on two env runners.

The instance is that of ``scripts/rl_followers.py``: Cournot (``cournot_v0``) with ``n = 10``
firms, production-cost curvature ``k = 1`` and outputs in ``[0, 40]``. The firms are RLlib PPO
agents (new API stack) sharing one policy (module ``"shared"``), a Gaussian MLP on the 1-D
output, observing ``[own tax, last price, own last output]``; the stage game is repeated and
PPO uses ``γ = 0`` (a contextual bandit: myopic best responses, as the game's Nash equilibrium
assumes). ``num_env_runners = 2`` remote env runners, each stepping ``ENVS_PER_RUNNER`` envs,
sample the episodes; the learner runs on the driver.

Actions. The suite's envs refuse out-of-bound actions (nothing is silently clipped), so RLlib is
configured with ``normalize_actions=True, clip_actions=True``: the policy's Gaussian lives in
RLlib's normalised space, and RLlib's ``NormalizeAndClipActions`` connector maps each sample
affinely from ``[-1, 1]`` to ``[0, 40]`` and clips it to the action space before ``env.step``
(PPO's log-probabilities are those of the unclipped samples). Observations and rewards are
divided by fixed constants (:class:`ScaledObservationsRewards`: the observation scales of the
SB3 script, rewards by ``REWARD_SCALE``), the only difference in the followers' view.

The planner. :func:`planners.rllib.with_shared_planner` adds ONE :class:`~planners.shared.SharedPlanner`
to the algorithm on the driver: after every training iteration it collects the joint actions
every env of every runner played during the iteration's sampling, and (after ``warmup``
iterations at zero tax) takes one step from their mean and pushes the new tax to every env of
both runners before the next sampling. Planners, step sizes and information structures are the
SB3 script's (:func:`rl_followers.make_planner`): ``none``, ``social_gradient``,
``implicit_gradient`` (single loop) and ``oracle``. Each run checks that both runners received
the same tax sequence (``runners_agree``).

Welfare. ``W(x) = −social_cost`` of the outputs the firms actually played (sampled actions,
exploration included), recorded in the envs by :class:`ScaledObservationsRewards`;
``final_welfare`` is the mean ``W`` over the last ``TAIL`` of the training iterations' env steps,
``gap_closed = (W − W̄_none)/(W* − W̄_none)`` with ``W̄_none`` the mean final welfare of the
``none`` runs and ``W* = −game.social_optimum().value``. Target: both adaptive planners close
≥ 80% of the gap, the whole script under 20 minutes. ``env_steps_per_s``: env steps (rounds of
one env, summed over every env of both runners) per second of training (sampling, learning and
planner steps; building the algorithm is excluded and reported as ``build_s``).

Usage: ``python scripts/rllib_followers.py --json rllib.json --plot rllib.png [--seeds 3] [--quick]``
"""

from __future__ import annotations

import functools
import os
import sys
import time

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv
from rl_followers import GAME, cli, make_planner, observation_scales, run_grid

from incentive_envs import cournot_v0
from planners.rllib import recorders, with_shared_planner
from planners.shared import JointActionRecorder

ENV_NAME = "rllib_followers/cournot"
"""The RLlib name of the followers' env (registered by :func:`register`)."""
REWARD_SCALE = 100.0
"""Rewards are divided by this (profits are O(100) near the equilibria, O(1000) at random play)."""
ENV_RUNNERS = 2
ENVS_PER_RUNNER = 8
MAX_CYCLES = 500
"""Episode length: the tax survives episode ends (the planner lives on the driver)."""
TAIL = 0.1
"""Fraction of the training env steps (at least the last iteration) ``final_welfare`` averages."""
PPO_TRAINING = {
    "gamma": 0.0,
    "lambda_": 1.0,
    "lr": 3e-3,
    "num_epochs": 3,
    "vf_clip_param": 100.0,
    "entropy_coeff": 0.0,
}
FULL = {"iterations": 20, "train_batch": 1000, "minibatch": 1000, "warmup": 1}
QUICK = {"iterations": 2, "train_batch": 200, "minibatch": 200, "warmup": 0}


class ScaledObservationsRewards(ParallelEnv):
    """The followers' view of a suite env: observations divided by ``obs_scale``, rewards by
    ``reward_scale``; it also sums the welfare ``W`` of every joint action played (the designer's
    measurement, not given to the planner). Everything else is the wrapped env's.

    Parameters
    ----------
    env : IncentiveParallelEnv
    obs_scale : array_like
        Positive, one per observation entry.
    reward_scale : float
        Positive.
    """

    def __init__(self, env, obs_scale, reward_scale: float):
        self.env = env
        self.possible_agents = list(env.possible_agents)
        self.metadata = env.metadata
        self.render_mode = env.render_mode
        space = env.observation_space(self.possible_agents[0])
        scale = np.asarray(obs_scale, dtype=np.float32)
        if scale.shape != space.shape or not np.all(scale > 0):
            raise ValueError(f"obs_scale must be {space.shape[0]} positive numbers, got {obs_scale!r}")
        if not reward_scale > 0:
            raise ValueError(f"reward_scale must be positive, got {reward_scale!r}")
        self._obs_scale, self._reward_scale = scale, float(reward_scale)
        self._space = spaces.Box(space.low / scale, space.high / scale, dtype=np.float32)
        self._welfare_sum, self._welfare_count = 0.0, 0

    @property
    def agents(self) -> list[str]:
        return self.env.agents

    @property
    def unwrapped(self):
        return self.env.unwrapped

    def observation_space(self, agent: str) -> spaces.Box:
        return self._space

    def action_space(self, agent: str) -> spaces.Box:
        return self.env.action_space(agent)

    def reset(self, seed: int | None = None, options: dict | None = None):
        observations, infos = self.env.reset(seed=seed, options=options)
        return self._scaled(observations), infos

    def step(self, actions: dict):
        observations, rewards, terminations, truncations, infos = self.env.step(actions)
        base = self.unwrapped
        self._welfare_sum += base.game.welfare(base.strategy)
        self._welfare_count += 1
        rewards = {agent: reward / self._reward_scale for agent, reward in rewards.items()}
        return self._scaled(observations), rewards, terminations, truncations, infos

    def _scaled(self, observations: dict) -> dict:
        return {agent: observation / self._obs_scale for agent, observation in observations.items()}

    def collect_welfare(self) -> tuple[float, int]:
        """``(sum of W over the joint actions played, how many)`` since the last call, then zero them."""
        collected = (self._welfare_sum, self._welfare_count)
        self._welfare_sum, self._welfare_count = 0.0, 0
        return collected

    def render(self):
        return self.env.render()

    def close(self) -> None:
        self.env.close()


def make_env(config) -> object:
    """RLlib env creator: a Cournot env in the followers' view, its joint actions recorded."""
    from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv

    env = cournot_v0.parallel_env(**dict(config))
    scaled = ScaledObservationsRewards(env, observation_scales(env.game), REWARD_SCALE)
    return ParallelPettingZooEnv(JointActionRecorder(scaled))


def register() -> None:
    """Register :func:`make_env` with RLlib as :data:`ENV_NAME`."""
    from ray.tune.registry import register_env

    register_env(ENV_NAME, make_env)


def _welfare(env_runner) -> tuple[float, int]:
    total, count = 0.0, 0
    for recorder in recorders(env_runner):
        welfare_sum, played = recorder.env.collect_welfare()
        total, count = total + welfare_sum, count + played
    return total, count


def _incentives(env_runner) -> list[list[list[float]]]:
    return [recorder.incentives_received for recorder in recorders(env_runner)]


def build(planner: str, seed: int, train_batch: int, minibatch: int, warmup: int):
    """The PPO algorithm with one shared ``planner`` (RLlib must be initialised)."""
    from ray.rllib.algorithms.ppo import PPO, PPOConfig

    algorithm_class = with_shared_planner(
        PPO, "cournot_v0", functools.partial(make_planner, planner), update_every=1, warmup=warmup
    )
    config = (
        PPOConfig(algo_class=algorithm_class)
        .environment(
            ENV_NAME,
            env_config={**GAME, "max_cycles": MAX_CYCLES},
            normalize_actions=True,
            clip_actions=True,
        )
        .multi_agent(policies={"shared"}, policy_mapping_fn=lambda agent_id, episode, **kwargs: "shared")
        .env_runners(num_env_runners=ENV_RUNNERS, num_envs_per_env_runner=ENVS_PER_RUNNER)
        .training(train_batch_size_per_learner=train_batch, minibatch_size=minibatch, **PPO_TRAINING)
        .rl_module(model_config={"fcnet_hiddens": [64, 64]})
        .debugging(seed=seed)
    )
    return config.build_algo()


def run(planner: str, seed: int, iterations: int, train_batch: int, minibatch: int, warmup: int) -> dict:
    """One PPO training run under ``planner``; returns the welfare curve and final numbers."""
    started = time.perf_counter()
    algorithm = build(planner, seed, train_batch, minibatch, warmup)
    build_s = time.perf_counter() - started
    try:
        algorithm.env_runner_group.foreach_env_runner(_welfare)  # drop RLlib's env-check steps
        steps, welfare = [], []
        started = time.perf_counter()
        for _ in range(iterations):
            algorithm.train()
            collected = algorithm.env_runner_group.foreach_env_runner(_welfare)
            played = sum(count for _, count in collected)
            steps.append((steps[-1] if steps else 0) + played)
            welfare.append(sum(total for total, _ in collected) / played)
        train_s = time.perf_counter() - started
        sequences = [
            log
            for logs in algorithm.env_runner_group.foreach_env_runner(_incentives, local_env_runner=False)
            for log in logs
        ]
        shared = algorithm.shared_planner
        result = {
            "planner": planner,
            "seed": seed,
            "env_runners": algorithm.env_runner_group.num_remote_env_runners(),
            "planner_updates": shared.updates,
            "final_tax": shared.incentive.tolist(),
            "runners_agree": len(sequences) == ENV_RUNNERS * ENVS_PER_RUNNER
            and all(sequence == sequences[0] for sequence in sequences),
        }
    finally:
        algorithm.stop()
    steps, welfare = np.asarray(steps), np.asarray(welfare)
    increments = np.diff(steps, prepend=0)
    tail = steps > steps[-1] * (1 - TAIL)
    tail[-1] = True
    return {
        **result,
        "final_welfare": float(np.average(welfare[tail], weights=increments[tail])),
        "env_steps": int(steps[-1]),
        "env_steps_per_s": float(steps[-1] / train_s),
        "train_s": train_s,
        "build_s": build_s,
        "curve": {"env_steps": steps.tolist(), "welfare": welfare.tolist()},
    }


def experiment(seeds: int, settings: dict) -> dict:
    """All planners × seeds in one Ray session; returns the JSON payload (without wall time)."""
    import ray

    # Ray starts its workers at niceness 15: on a shared machine the env runners would then be
    # measured starved by every other process; run them at the driver's priority instead.
    os.environ.setdefault("RAY_worker_niceness", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    # the scripts directory is not a package that Ray's workers can import: ship both scripts'
    # modules (env creator, planners) to them by value
    for module in (sys.modules[__name__], sys.modules[make_planner.__module__]):
        ray.cloudpickle.register_pickle_by_value(module)
    try:
        register()
        return run_grid(
            run,
            seeds,
            settings,
            {
                "env_runners": ENV_RUNNERS,
                "envs_per_env_runner": ENVS_PER_RUNNER,
                "max_cycles": MAX_CYCLES,
                "reward_scale": REWARD_SCALE,
                "ppo": PPO_TRAINING,
                "final_welfare": f"mean W of the played (sampled) outputs over the last {TAIL:.0%} of training env steps",
            },
        )
    finally:
        ray.shutdown()


def main(argv=None) -> dict:
    return cli(argv, __doc__.splitlines()[0], experiment, QUICK, FULL, "RLlib PPO firms, 2 env runners")


if __name__ == "__main__":
    main()
