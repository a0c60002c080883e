"""incentive-envs: games where a planner steers self-interested learners with incentives.

Every game is an :class:`~incentive_envs.core.IncentiveGame` (the model used by planners,
learners and metrics) with a PettingZoo ``ParallelEnv`` beside it.
"""

from incentive_envs.aggregative import AggregativeGame, AggregativeParams
from incentive_envs.core import FirstBestIncentive, IncentiveGame, IncentiveSet, SocialOptimum, StrategySet
from incentive_envs.cournot import CournotGame, CournotParams
from incentive_envs.oscillators import OscillatorGame, OscillatorParams
from incentive_envs.registry import EnvSpec, make, registry, spec
from incentive_envs.tax_economy import TaxEconomyGame, TaxEconomyParams

__all__ = [
    "AggregativeGame",
    "AggregativeParams",
    "CournotGame",
    "CournotParams",
    "EnvSpec",
    "FirstBestIncentive",
    "IncentiveGame",
    "IncentiveSet",
    "OscillatorGame",
    "OscillatorParams",
    "SocialOptimum",
    "StrategySet",
    "TaxEconomyGame",
    "TaxEconomyParams",
    "make",
    "registry",
    "spec",
]
__version__ = "0.1.0"
