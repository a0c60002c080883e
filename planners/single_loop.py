"""Simultaneous design-and-play: the paper's Algorithms 1 and 2 (implicit-gradient single loop)."""

from __future__ import annotations

import numpy as np

from agents.schedules import PowerSchedule, as_schedule
from incentive_envs.core import IncentiveGame
from planners.base import Planner
from planners.hypergradient import entropic_hypergradient, projected_hypergradient

THEOREM_5_4_POWERS = {"incentive": 1.0, "learner": 2.0 / 3.0}
"""Algorithm 1 (Theorem 5.4): ``α_k = α/(k+1)``, ``β_k = β/(k+1)^{2/3}``."""

THEOREM_5_5_POWERS = {"incentive": 0.5, "learner": 2.0 / 7.0, "mixing": 4.0 / 7.0}
"""Algorithm 2 (Theorem 5.5): ``α_k = α/(k+1)^{1/2}``, ``β_k = β/(k+1)^{2/7}``, ``ν_k = ν/(k+1)^{4/7}``."""


class SingleLoopPlanner(Planner):
    """Implicit-gradient single loop (paper Algorithms 1 and 2).

    Per iteration the followers take one learner step (``x_{k+1}``), then the planner moves
    ``θ_{k+1} = Proj_Θ(θ_k − α_k ∇̃f(θ_k, x_{k+1}))``, where ``∇̃f`` is the implicit
    hypergradient of eq. (4.3)/(4.5) evaluated at the *current* strategy instead of the
    equilibrium (see :mod:`planners.hypergradient`).

    Information structure: observes the followers' joint strategy ``x``; uses the game model's
    pseudo-gradient, its vector-Jacobian products in ``x`` and ``θ`` and the social cost's
    gradients at ``(θ, x)`` — never the equilibrium solver or the social optimum.

    Parameters
    ----------
    game : IncentiveGame
    step_size : PowerSchedule or float
        ``α_k``. Default: Theorem 5.4 (``α/(k+1)``) for box/unconstrained games with
        ``α = 1``; Theorem 5.5 (``α/(k+1)^{1/2}``) for simplices.
    learner_step : PowerSchedule or float
        ``β_k`` of the map whose fixed point defines the equilibrium (needed by the entropic
        map; for the projected map it only decides the free set). Default 1.
    solver : callable ``(matvec, b) -> z``, optional
        Linear solver of the adjoint system (default matrix-free GMRES).
    """

    name = "single_loop"

    def __init__(
        self,
        game: IncentiveGame,
        step_size: PowerSchedule | float | None = None,
        *,
        learner_step: PowerSchedule | float = 1.0,
        solver=None,
    ):
        super().__init__(game)
        simplex = game.strategy_set.kind == "simplex"
        if step_size is None:
            powers = THEOREM_5_5_POWERS if simplex else THEOREM_5_4_POWERS
            step_size = PowerSchedule(1.0, powers["incentive"])
        self.step_size = as_schedule(step_size, "step_size")
        self.learner_step = as_schedule(learner_step, "learner_step")
        self.solver = solver
        self._hypergradient = entropic_hypergradient if simplex else projected_hypergradient

    def hypergradient(self, theta: np.ndarray, x: np.ndarray, k: int = 0) -> np.ndarray:
        """The surrogate ``∇̃f(θ, x)``."""
        return self._hypergradient(self.game, x, theta, self.solver, self.learner_step(k))

    def update(self, theta: np.ndarray, x: np.ndarray, k: int) -> np.ndarray:
        step = self.step_size(k) * self.hypergradient(theta, x, k)
        return self.game.incentive_set.project(theta - step)
