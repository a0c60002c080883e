"""Simultaneous design-and-play: the paper's Algorithms 1 and 2 (implicit-gradient single loop)."""

from __future__ import annotations

import numpy as np

from agents.learners import DifferentiableLearner, Learner
from agents.schedules import PowerSchedule, as_schedule
from incentive_envs.core import IncentiveGame, clip_into
from planners.base import Planner
from planners.hypergradient import DEFAULT_SOLVER, _implicit_hypergradient, check_differentiable

THEOREM_5_4_POWERS = {"incentive": 1.0, "learner": 2.0 / 3.0}
"""Algorithm 1 (Theorem 5.4): ``α_k = α/(k+1)``, ``β_k = β/(k+1)^{2/3}``."""

THEOREM_5_5_POWERS = {"incentive": 0.5, "learner": 2.0 / 7.0, "mixing": 4.0 / 7.0}
"""Algorithm 2 (Theorem 5.5): ``α_k = α/(k+1)^{1/2}``, ``β_k = β/(k+1)^{2/7}``, ``ν_k = ν/(k+1)^{4/7}``."""


class SingleLoopPlanner(Planner):
    """Implicit-gradient single loop (Liu et al. 2022, "Inducing Equilibria via Incentives:
    Simultaneous Design-and-Play Ensures Global Convergence", NeurIPS, Algorithms 1 and 2).

    Per iteration the followers take one learner step (``x_{k+1}``), then the planner moves
    ``θ_{k+1} = Proj_Θ(θ_k − α_k ∇̃f(θ_k, x_{k+1}))``, where ``∇̃f`` is the implicit
    hypergradient of eq. (4.5) through the followers' fixed-point map, evaluated at the
    *current* strategy instead of the equilibrium (:mod:`planners.hypergradient`).

    Information structure: observes the followers' joint strategy ``x``; uses the game model's
    pseudo-gradient, its vector-Jacobian products in ``x`` and ``θ``, the social cost's
    gradients at ``(θ, x)`` and the followers' learning rule (their fixed-point map) — never
    the equilibrium solver or the social optimum.

    Parameters
    ----------
    game : IncentiveGame
    learner : Learner
        The followers' learner. Its fixed-point map is differentiated when it has one.
    step_size : PowerSchedule or float
        ``α_k``. Default: Theorem 5.4 (``1/(k+1)``) for box/unconstrained games, Theorem 5.5
        (``1/(k+1)^{1/2}``) for simplices.
    follower_model : DifferentiableLearner, optional
        The map to differentiate when the followers' learner has none (best response, Hedge,
        logit choice): the planner's model of how the followers learn, e.g.
        ``EuclideanMirrorDescent(game.strategy_set, 1.0)``. ``ValueError`` if neither has a map.
    solver : callable ``AdjointSystem -> z``, optional
        Default :class:`~planners.hypergradient.AutoSolver` (Woodbury where the game has
        diagonal-plus-low-rank structure, GMRES otherwise).
    """

    name = "single_loop"
    information = (
        "observes the joint strategy; uses v, its VJPs in x and θ, ∇f and the followers' fixed-point map"
    )

    def __init__(
        self,
        game: IncentiveGame,
        learner: Learner,
        step_size: PowerSchedule | float | None = None,
        *,
        follower_model: DifferentiableLearner | None = None,
        solver=None,
    ):
        super().__init__(game)
        if not isinstance(learner, Learner):
            raise ValueError(f"learner must be a Learner, got {type(learner).__name__}")
        model = check_differentiable(learner if follower_model is None else follower_model, "follower_model")
        if model.strategy_set.dim != game.strategy_set.dim:
            raise ValueError("the followers' model must be built on the game's strategy set")
        if step_size is None:
            power = THEOREM_5_5_POWERS if game.strategy_set.kind == "simplex" else THEOREM_5_4_POWERS
            step_size = PowerSchedule(1.0, power["incentive"])
        self.step_size = as_schedule(step_size, "step_size")
        self.follower_model = model
        self.solver = DEFAULT_SOLVER if solver is None else solver

    def hypergradient(self, theta, x, k: int = 0) -> np.ndarray:
        """The surrogate ``∇̃f(θ, x)`` through the followers' map at iteration ``k`` (validated)."""
        theta, x = self.game.validate_incentive(theta), self.game.validate_strategy(x)
        return _implicit_hypergradient(self.game, self.follower_model, x, theta, k, self.solver)

    def _update(self, theta: np.ndarray, x: np.ndarray, k: int) -> np.ndarray:
        step = _implicit_hypergradient(self.game, self.follower_model, x, theta, k, self.solver)
        step *= -self.step_size(k)  # θ − α_k ∇̃f, projected, in the gradient's buffer
        step += theta
        return clip_into(step, self.game.incentive_set.bounds)
