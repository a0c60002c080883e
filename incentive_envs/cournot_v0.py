"""``cournot_v0``: Cournot oligopoly with emission tax (see :mod:`incentive_envs.cournot.env`)."""

from incentive_envs.cournot.env import CournotEnv, env, parallel_env, raw_env

__all__ = ["CournotEnv", "env", "parallel_env", "raw_env"]
