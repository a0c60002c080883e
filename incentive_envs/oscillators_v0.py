"""``oscillators_v0``: coupled oscillators with linear prices (see :mod:`incentive_envs.oscillators.env`)."""

from incentive_envs.oscillators.env import OscillatorEnv, env, parallel_env, raw_env

__all__ = ["OscillatorEnv", "env", "parallel_env", "raw_env"]
