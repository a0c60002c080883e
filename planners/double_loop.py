"""Double-loop baselines of the paper's Table 1 (Li, Yu, Mahmassani & Hu 2020, "End-to-end
learning and intervention in games", NeurIPS): solve, then differentiate.

Each outer iteration runs the followers' learner at the current incentive until its iterates
move less than ``tolerance`` (sup-norm), then takes one projected gradient step on θ with

* ``differentiation="implicit"`` (ID): the implicit hypergradient at the solution, through
  the followers' fixed-point map (or ``follower_model``'s);
* ``differentiation="unrolled"`` (AD): reverse-mode differentiation with torch autograd
  through every unrolled learner iteration. Each iteration is a ``torch.autograd.Function``
  whose backward pass is the learner's own vector–Jacobian product of its update
  (:meth:`~agents.learners.DifferentiableLearner.step_vjp`), so torch keeps the tape of the
  whole inner loop and backpropagates through it — for any differentiable learner. With
  noisy feedback the backward pass differentiates the noise-free update (the projection's
  active set is that of the noise-free step).
"""

from __future__ import annotations

import numpy as np

from agents.learners import DifferentiableLearner, Learner
from agents.play import model_feedback
from agents.schedules import PowerSchedule, as_schedule
from incentive_envs.core import IncentiveGame
from incentive_envs.validation import check_bool, check_choice, check_positive_int, check_scalar
from planners.base import Planner
from planners.hypergradient import DEFAULT_SOLVER, _implicit_hypergradient, check_differentiable

MAX_INNER = 10_000_000
"""Largest accepted cap on inner iterations."""


MIN_TOLERANCE = 1e-14
"""Smallest accepted inner tolerance: below float64's resolution of the strategies the inner loop
could only stop at an exact fixed point, so it would run to ``max_inner`` every time."""


class DoubleLoopPlanner(Planner):
    """Solve the lower level to a tolerance, then take an exact (ID) or unrolled (AD) step.

    Information structure: drives the followers' learner to convergence at every outer
    step (it needs to run the game repeatedly at a fixed incentive); ID uses the game
    model's vector-Jacobian products and social-cost gradients at the solution, AD the same
    products along the whole inner trajectory; both use the followers' learning rule.

    Parameters
    ----------
    game : IncentiveGame
    learner : Learner
        The followers' learner (AD needs it differentiable: it unrolls its steps).
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
    follower_model : DifferentiableLearner, optional
        ID's map when the followers' learner has none (see
        :class:`~planners.single_loop.SingleLoopPlanner`).
    solver : callable, optional
        Adjoint solver for ID.
    lower_level : {"learner", "equilibrium"}
        ``"learner"``: run the followers' learner to ``tolerance``; ``"equilibrium"`` (ID
        only): the game's own equilibrium solver (``game.equilibrium``), i.e. the exact lower
        level of the solve-then-differentiate scheme at a fraction of the learner's steps.
    """

    name = "double_loop"
    information = (
        "drives the learner to convergence each step; uses v's VJPs, ∇f and the followers' learning rule"
    )

    def __init__(
        self,
        game: IncentiveGame,
        learner: Learner,
        step_size: PowerSchedule | float = 1.0,
        *,
        differentiation: str = "implicit",
        tolerance: float = 1e-8,
        max_inner: int = 100_000,
        warm_start: bool | None = None,
        follower_model: DifferentiableLearner | None = None,
        solver=None,
        lower_level: str = "learner",
    ):
        super().__init__(game)
        if not isinstance(learner, Learner):
            raise ValueError(f"learner must be a Learner, got {type(learner).__name__}")
        self.differentiation = check_choice(differentiation, "differentiation", ("implicit", "unrolled"))
        self.lower_level = check_choice(lower_level, "lower_level", ("learner", "equilibrium"))
        if self.lower_level == "equilibrium" and self.differentiation == "unrolled":
            raise ValueError(
                "lower_level='equilibrium' has no iterations to unroll: use differentiation='implicit'"
            )
        if self.differentiation == "unrolled":
            check_differentiable(learner)
            if follower_model is not None:
                raise ValueError(
                    "follower_model is for implicit differentiation; AD unrolls the learner itself"
                )
            self.follower_model = learner
        else:
            self.follower_model = check_differentiable(
                learner if follower_model is None else follower_model, "follower_model"
            )
        self.step_size = as_schedule(step_size, "step_size")
        self.name = "double_loop_id" if self.differentiation == "implicit" else "double_loop_ad"
        self.tolerance = check_scalar(tolerance, "tolerance", low=MIN_TOLERANCE)
        self.max_inner = check_positive_int(max_inner, "max_inner", MAX_INNER)
        self.warm_start = (
            (self.differentiation == "implicit")
            if warm_start is None
            else check_bool(warm_start, "warm_start")
        )
        self.solver = DEFAULT_SOLVER if solver is None else solver
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self.inner_iterations: list[int] = []
        self._cold_start: np.ndarray | None = None
        self._gradient: np.ndarray | None = None

    def advance_followers(self, learner, x, theta, k, rng=None, noise_std=0.0):
        """Run ``learner`` at ``theta`` until it moves less than ``tolerance`` (or solve the
        lower level with the game's solver, counted as one step)."""
        if self._cold_start is None:
            self._cold_start = np.array(x, dtype=np.float64)
        start = x if self.warm_start else self._cold_start
        if self.lower_level == "equilibrium":
            x, steps = self.game._equilibrium(theta), 1
        elif self.differentiation == "unrolled":
            x, self._gradient, steps = self._unrolled_solve(learner, start, theta, rng, noise_std)
        else:
            x, steps = self._solve(learner, start, theta, rng, noise_std)
        self.inner_iterations.append(steps)
        return x

    def _solve(self, learner, x, theta, rng, noise_std):
        for t in range(self.max_inner):
            x_next = learner._step(x, t, model_feedback(self.game, learner, x, theta, rng, noise_std))
            if np.max(np.abs(x_next - x)) <= self.tolerance:
                return x_next, t + 1
            x = x_next
        return x, self.max_inner

    def _unrolled_solve(self, learner, x, theta, rng, noise_std):
        import torch

        game = self.game
        step_function = _learner_step_function(game, learner, rng, noise_std)
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
        grad_x = torch.as_tensor(game._social_cost_grad_x(x_final, theta))
        x_node.backward(grad_x)
        gradient = theta_leaf.grad.numpy() + game._social_cost_grad_theta(x_final, theta)
        return x_final, gradient, steps

    def state_dict(self) -> dict:
        """The cold-start profile and the inner-iteration counts (the AD gradient only lives
        between ``advance_followers`` and ``update`` of one iteration)."""
        return {
            "cold_start": None if self._cold_start is None else self._cold_start.tolist(),
            "inner_iterations": list(self.inner_iterations),
        }

    def load_state_dict(self, state: dict) -> None:
        if not isinstance(state, dict) or set(state) != {"cold_start", "inner_iterations"}:
            raise ValueError(f"state must have the keys cold_start and inner_iterations, got {state!r}"[:200])
        cold_start = state["cold_start"]
        cold_start = None if cold_start is None else self.game.validate_strategy(cold_start, "cold_start")
        if not isinstance(state["inner_iterations"], list):
            raise ValueError(
                f"inner_iterations must be a list of counts, got {state['inner_iterations']!r}"[:200]
            )
        inner_iterations = [
            check_positive_int(steps, "inner_iterations", self.max_inner)
            for steps in state["inner_iterations"]
        ]
        self._cold_start, self.inner_iterations = cold_start, inner_iterations

    def _update(self, theta: np.ndarray, x: np.ndarray, k: int) -> np.ndarray:
        if self.differentiation == "unrolled":
            if self._gradient is None:
                raise ValueError("the AD double loop needs advance_followers() before update()")
            gradient, self._gradient = self._gradient, None
        else:
            gradient = _implicit_hypergradient(self.game, self.follower_model, x, theta, 0, self.solver)
        return self.game.incentive_set.project(theta - self.step_size(k) * gradient)


def _learner_step_function(game: IncentiveGame, learner: DifferentiableLearner, rng, noise_std):
    """A ``torch.autograd.Function`` for one update of ``learner`` (its own VJPs backward)."""
    import torch

    class LearnerStep(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, theta, t):
            x_np, theta_np = x.detach().numpy(), theta.detach().numpy()
            ctx.save_for_backward(x, theta)
            ctx.t = t
            feedback = model_feedback(game, learner, x_np, theta_np, rng, noise_std)
            return torch.from_numpy(learner._step(x_np, t, feedback))

        @staticmethod
        def backward(ctx, grad_output):
            x, theta = ctx.saved_tensors
            grad_x, grad_theta = learner.step_vjp(
                game, x.detach().numpy(), theta.detach().numpy(), ctx.t, grad_output.numpy()
            )
            return torch.from_numpy(grad_x), torch.from_numpy(grad_theta), None

    return LearnerStep
