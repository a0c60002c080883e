"""``aggregative_v0``: aggregative game with linear prices (see :mod:`incentive_envs.aggregative.env`)."""

from incentive_envs.aggregative.env import AggregativeEnv, env, parallel_env, raw_env

__all__ = ["AggregativeEnv", "env", "parallel_env", "raw_env"]
