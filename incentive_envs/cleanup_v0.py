"""``cleanup_v0``: Cleanup, a sequential social dilemma (see :mod:`incentive_envs.cleanup.env`)."""

from incentive_envs.cleanup.env import CleanupConfig, CleanupEnv, env, parallel_env, raw_env
from incentive_envs.cleanup.game import PRESETS

__all__ = ["PRESETS", "CleanupConfig", "CleanupEnv", "env", "parallel_env", "raw_env"]
