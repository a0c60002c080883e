"""Double-loop baselines of the paper's Table 1 (Li et al. 2020): solve, then differentiate.

Each outer iteration runs the learner at the current incentive until its iterates move less
than ``tolerance`` (sup-norm), then takes one projected gradient step on θ with

* ``differentiation="implicit"`` (ID): the exact implicit hypergradient at the solution;
* ``differentiation="unrolled"`` (AD): reverse-mode differentiation with torch autograd
  through every unrolled learner iteration ``x_{t+1} = Proj_X(x_t + β_t v_θ(x_t))``. Each
  iteration is a ``torch.autograd.Function`` whose backward pass is the game's
  vector-Jacobian products masked by the projection's active set, so torch keeps the tape
  of the whole inner loop and backpropagates through it.
"""

from __future__ import annotations

import numpy as np

from agents.learners import EuclideanMirrorDescent
from agents.play import model_feedback
from agents.schedules import PowerSchedule, as_schedule
from incentive_envs.core import IncentiveGame
from incentive_envs.validation import check_positive_int, check_scalar
from planners.base import Planner
from planners.hypergradient import projected_hypergradient


class DoubleLoopPlanner(Planner):
    """Solve the lower level to a tolerance, then take an exact (ID) or unrolled (AD) step.

    Information structure: drives the followers' learner to convergence at every outer
    step (it needs to run the game repeatedly at a fixed incentive); ID uses the game
    model's vector-Jacobian products and social-cost gradients at the solution, AD the same
    products along the whole inner trajectory.

    Parameters
    ----------
    game : IncentiveGame
        Box or unconstrained strategy set.
    step_size : PowerSchedule or float
        ``α_k`` of the outer projected gradient step.
    differentiation : {"implicit", "unrolled"}
    tolerance : float
        Inner stopping rule ``‖x_{t+1} − x_t‖_∞ <= tolerance``.
    max_inner : int
        Cap on inner iterations per outer step.
    warm_start : bool or None
        Start the inner loop from the previous solution. Default: True for ID; False for AD
        (the unrolled derivative of a warm-started loop only sees the last few iterations
        and is biased, so AD restarts from the initial profile each time).
    solver : callable, optional
        Adjoint solver for ID.
    """

    name = "double_loop"

    def __init__(
        self,
        game: IncentiveGame,
        step_size: PowerSchedule | float = 1.0,
        *,
        differentiation: str = "implicit",
        tolerance: float = 1e-8,
        max_inner: int = 100_000,
        warm_start: bool | None = None,
        solver=None,
    ):
        super().__init__(game)
        if differentiation not in ("implicit", "unrolled"):
            raise ValueError(f"differentiation must be 'implicit' or 'unrolled', got {differentiation!r}")
        if game.strategy_set.kind == "simplex":
            raise ValueError("DoubleLoopPlanner supports box and unconstrained strategy sets")
        self.step_size = as_schedule(step_size, "step_size")
        self.differentiation = differentiation
        self.name = "double_loop_id" if differentiation == "implicit" else "double_loop_ad"
        self.tolerance = check_scalar(tolerance, "tolerance", low=0.0, low_inclusive=False)
        self.max_inner = check_positive_int(max_inner, "max_inner")
        self.warm_start = (differentiation == "implicit") if warm_start is None else bool(warm_start)
        self.solver = solver
        self.inner_iterations: list[int] = []
        self._cold_start: np.ndarray | None = None
        self._gradient: np.ndarray | None = None

    def advance_followers(self, learner, x, theta, k, rng=None, noise_std=0.0):
        """Run ``learner`` at ``theta`` until it moves less than ``tolerance``."""
        if self._cold_start is None:
            self._cold_start = np.array(x, dtype=np.float64)
        start = x if self.warm_start else self._cold_start
        if self.differentiation == "unrolled":
            x, self._gradient, steps = self._unrolled_solve(learner, start, theta, rng, noise_std)
        else:
            x, steps = self._solve(learner, start, theta, rng, noise_std)
        self.inner_iterations.append(steps)
        return x

    def _solve(self, learner, x, theta, rng, noise_std):
        for t in range(self.max_inner):
            x_next = learner.step(x, t, model_feedback(self.game, learner, x, theta, rng, noise_std))
            if np.max(np.abs(x_next - x)) <= self.tolerance:
                return x_next, t + 1
            x = x_next
        return x, self.max_inner

    def _unrolled_solve(self, learner, x, theta, rng, noise_std):
        import torch

        if not isinstance(learner, EuclideanMirrorDescent):
            raise ValueError(f"unrolled differentiation needs EuclideanMirrorDescent, got {learner!r}")
        game = self.game
        step_function = _projected_step_function(game, learner, rng, noise_std)
        theta_leaf = torch.tensor(theta, dtype=torch.float64, requires_grad=True)
        x_node = torch.tensor(x, dtype=torch.float64)
        steps = self.max_inner
        for t in range(self.max_inner):
            x_next = step_function.apply(x_node, theta_leaf, t)
            moved = float(torch.max(torch.abs(x_next.detach() - x_node.detach())))
            x_node = x_next
            if moved <= self.tolerance:
                steps = t + 1
                break
        x_final = x_node.detach().numpy().copy()
        grad_x = torch.as_tensor(game.social_cost_grad_x(x_final, theta))
        x_node.backward(grad_x)
        gradient = theta_leaf.grad.numpy() + game.social_cost_grad_theta(x_final, theta)
        return x_final, gradient, steps

    def state_dict(self) -> dict:
        """The cold-start profile and the inner-iteration counts (the AD gradient only lives
        between ``advance_followers`` and ``update`` of one iteration)."""
        return {
            "cold_start": None if self._cold_start is None else self._cold_start.tolist(),
            "inner_iterations": list(self.inner_iterations),
        }

    def load_state_dict(self, state: dict) -> None:
        cold_start = state["cold_start"]
        self._cold_start = None if cold_start is None else np.asarray(cold_start, dtype=np.float64)
        self.inner_iterations = [int(steps) for steps in state["inner_iterations"]]

    def update(self, theta: np.ndarray, x: np.ndarray, k: int) -> np.ndarray:
        if self.differentiation == "unrolled":
            if self._gradient is None:
                raise ValueError("the AD double loop needs advance_followers() before update()")
            gradient, self._gradient = self._gradient, None
        else:
            gradient = projected_hypergradient(self.game, x, theta, self.solver)
        return self.game.incentive_set.project(theta - self.step_size(k) * gradient)


def _projected_step_function(game: IncentiveGame, learner: EuclideanMirrorDescent, rng, noise_std):
    """A ``torch.autograd.Function`` for one projected-gradient step of ``learner``."""
    import torch

    strategy_set = game.strategy_set

    class ProjectedGradientStep(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, theta, t):
            x_np, theta_np = x.detach().numpy(), theta.detach().numpy()
            beta = learner.step_size(t)
            raw = x_np + beta * model_feedback(game, learner, x_np, theta_np, rng, noise_std)
            if strategy_set.kind == "box":
                mask = (raw > strategy_set.lower) & (raw < strategy_set.upper)
            else:
                mask = np.ones_like(raw, dtype=bool)
            ctx.save_for_backward(x, theta)
            ctx.mask, ctx.beta = mask, beta
            return torch.from_numpy(strategy_set.project(raw))

        @staticmethod
        def backward(ctx, grad_output):
            x, theta = ctx.saved_tensors
            x_np, theta_np = x.detach().numpy(), theta.detach().numpy()
            masked = np.where(ctx.mask, grad_output.numpy(), 0.0)
            grad_x = masked + ctx.beta * game.vjp_x(x_np, theta_np, masked)
            grad_theta = ctx.beta * game.vjp_theta(x_np, theta_np, masked)
            return torch.from_numpy(grad_x), torch.from_numpy(grad_theta), None

    return ProjectedGradientStep
