"""``congestion_v0``: route choice with planner-set link tolls (see :mod:`incentive_envs.routing.env`)."""

from incentive_envs.routing.env import CongestionEnv, env, parallel_env, raw_env

__all__ = ["CongestionEnv", "env", "parallel_env", "raw_env"]
