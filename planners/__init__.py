"""Incentive designers on the slow timescale (SPEC §4), the experiment engine that runs them
with any learner on any game, and the ``incentive-bench`` command line."""

from planners.base import Planner
from planners.baselines import (
    FixedIncentivePlanner,
    NoIncentivePlanner,
    OraclePlanner,
    ZerothOrderPlanner,
    optimal_incentive,
)
from planners.double_loop import DoubleLoopPlanner
from planners.engine import MODEL_METRICS, Metric, Record, simulate
from planners.experiment import ExperimentConfig, build, compare_planners, run_experiment
from planners.hypergradient import (
    AutoSolver,
    DenseSolver,
    KrylovSolver,
    WoodburySolver,
    exact_hypergradient,
    implicit_hypergradient,
)
from planners.registry import PlannerSpec, combinations, registry, spec, valid
from planners.single_loop import SingleLoopPlanner
from planners.social_gradient import SocialGradientPlanner, social_gradient_flow
from planners.wrapper import PlannerWrapper

__all__ = [
    "MODEL_METRICS",
    "AutoSolver",
    "DenseSolver",
    "DoubleLoopPlanner",
    "ExperimentConfig",
    "FixedIncentivePlanner",
    "KrylovSolver",
    "Metric",
    "NoIncentivePlanner",
    "OraclePlanner",
    "Planner",
    "PlannerSpec",
    "PlannerWrapper",
    "Record",
    "SingleLoopPlanner",
    "SocialGradientPlanner",
    "WoodburySolver",
    "ZerothOrderPlanner",
    "build",
    "combinations",
    "compare_planners",
    "exact_hypergradient",
    "implicit_hypergradient",
    "optimal_incentive",
    "registry",
    "run_experiment",
    "simulate",
    "social_gradient_flow",
    "spec",
    "valid",
]
