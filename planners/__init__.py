"""Incentive designers on the slow timescale (SPEC §4)."""

from planners.base import Planner
from planners.baselines import (
    FixedIncentivePlanner,
    NoIncentivePlanner,
    OraclePlanner,
    ZerothOrderPlanner,
    optimal_incentive,
)
from planners.double_loop import DoubleLoopPlanner
from planners.hypergradient import (
    DenseSolver,
    KrylovSolver,
    entropic_hypergradient,
    exact_hypergradient,
    projected_hypergradient,
)
from planners.runner import ExperimentConfig, compare_planners, run_experiment
from planners.single_loop import SingleLoopPlanner
from planners.wrapper import PlannerWrapper

__all__ = [
    "DenseSolver",
    "DoubleLoopPlanner",
    "ExperimentConfig",
    "FixedIncentivePlanner",
    "KrylovSolver",
    "NoIncentivePlanner",
    "OraclePlanner",
    "Planner",
    "PlannerWrapper",
    "SingleLoopPlanner",
    "ZerothOrderPlanner",
    "compare_planners",
    "entropic_hypergradient",
    "exact_hypergradient",
    "optimal_incentive",
    "projected_hypergradient",
    "run_experiment",
]
