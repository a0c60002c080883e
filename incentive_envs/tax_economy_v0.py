"""``tax_economy_v0``: a bracketed income tax economy (see :mod:`incentive_envs.tax_economy.env`)."""

from incentive_envs.tax_economy.env import TaxEconomyEnv, env, parallel_env, raw_env

__all__ = ["TaxEconomyEnv", "env", "parallel_env", "raw_env"]
