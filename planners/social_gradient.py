"""Social-gradient incentive design: hypergradient-free linear prices.

Incentives are linear prices ``p_i x^i`` added to the agents' costs. The planner moves the
prices along the gradient of the social cost at the joint action it observes:

* discrete two-timescale scheme (agents on the fast timescale):
  ``θ_{k+1} = Proj_{P_c}(θ_k + α_k ∇_x Φ(x_k))`` (:class:`SocialGradientPlanner`);
* continuous-time flow ``dθ/dt = ∇_x Φ(x*(θ))`` when the equilibrium response is observable
  (:func:`social_gradient_flow`), integrated with ``scipy.integrate.solve_ivp``.

Sign convention: a price is a *cost* per unit of action, so raising ``p_i`` lowers agent
``i``'s action; moving ``p_i`` up where ``∂Φ/∂x^i > 0`` therefore pushes ``x^i`` down. At a
rest point with an interior equilibrium, ``∇_xΦ(x*) = 0`` and the price is Pigouvian:
``p_i = ∇_iΦ(x^so) − ∇_iJ_i(x^so)``. Along the flow, ``dΦ/dt = ∇Φᵀ [∂v/∂x]⁻¹ ∇Φ <= 0`` for
strongly monotone games (the symmetric part of ``[∂v/∂x]⁻¹`` is negative definite), so the
social cost at equilibrium never increases.

Here the incentive must enter each agent's pseudo-gradient as ``−θ_i`` on its own
coordinate (``∂v/∂θ = −I``), as for the suite's price games (Cournot taxes, aggregative and
oscillator prices); the constructor checks this on a probe vector.
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp

from agents.schedules import PowerSchedule, as_schedule
from incentive_envs.core import IncentiveGame, IncentiveSet
from incentive_envs.validation import check_positive_int, check_scalar
from planners.base import Planner


def _check_price_game(game: IncentiveGame) -> None:
    if not game.linear_prices:
        raise ValueError(
            f"social gradient needs linear prices in the costs (∂v/∂θ = −I); {type(game).__name__} "
            "declares linear_prices = False"
        )


class SocialGradientPlanner(Planner):
    """Discrete two-timescale social-gradient planner ``θ ← Proj_{P_c}(θ + α_k ∇_xΦ(x_k))``.

    Information structure: observes the joint action ``x`` and uses only the gradient of the
    social cost ``∇_xΦ(x)`` there — no agent model, no equilibrium, no sensitivities.

    Parameters
    ----------
    game : IncentiveGame
        A price game (``∂v/∂θ = −I``).
    step_size : PowerSchedule or float
        ``α_k``; keep it small against the followers' speed (two timescales).
    safe_set : IncentiveSet, optional
        The compact safe set ``P_c`` (a box); default the game's incentive bounds.
    """

    name = "social_gradient"
    information = "observes the joint strategy; uses only ∇_xΦ there"

    def __init__(
        self,
        game: IncentiveGame,
        step_size: PowerSchedule | float = 0.05,
        *,
        safe_set: IncentiveSet | None = None,
    ):
        super().__init__(game)
        _check_price_game(game)
        self.step_size = as_schedule(step_size, "step_size")
        if safe_set is not None and not isinstance(safe_set, IncentiveSet):
            raise ValueError(f"safe_set must be an IncentiveSet (a box), got {type(safe_set).__name__}")
        if safe_set is not None and safe_set.dim != game.incentive_set.dim:
            raise ValueError(
                f"safe_set has dimension {safe_set.dim}, the game's incentive {game.incentive_set.dim}"
            )
        self.safe_set = game.incentive_set if safe_set is None else safe_set

    def initial_incentive(self) -> np.ndarray:
        return self.safe_set.project(np.zeros(self.safe_set.dim))

    def _update(self, theta: np.ndarray, x: np.ndarray, k: int) -> np.ndarray:
        return self.safe_set.project(theta + self.step_size(k) * self.game._social_cost_grad_x(x, theta))


def social_gradient_flow(
    game: IncentiveGame,
    theta0,
    t_final: float,
    *,
    safe_set: IncentiveSet | None = None,
    t_eval=None,
    projection_horizon: float = 1e-2,
    rtol: float = 1e-9,
    atol: float = 1e-11,
    max_evaluations: int = 1_000_000,
):
    """Integrate the projected social-gradient flow ``dθ/dt = ∇_xΦ(x*(θ))`` from ``theta0``.

    The projection onto the safe set ``P_c`` is applied in the Lipschitz form
    ``dθ/dt = (Proj_{P_c}(θ + h ∇_xΦ(x*(θ))) − θ) / h`` with ``h = projection_horizon``: it is
    exactly the flow wherever ``θ + h∇Φ`` stays in ``P_c`` (in particular in the interior near
    a rest point) and tends to the tangent-cone projected flow as ``h → 0``, while keeping
    the right-hand side continuous so the ODE solver takes normal steps at the boundary.

    Information structure: observes the equilibrium response ``x*(θ)`` (``game.equilibrium``)
    and the social cost's gradient there; no Jacobians or hypergradients.

    ``t_final`` and ``projection_horizon`` must be at least ``1e-9`` (a shorter horizon makes
    the projected field arbitrarily stiff), and the integration stops with ``RuntimeError``
    after ``max_evaluations`` evaluations of the field, so it always returns.

    Returns
    -------
    scipy.integrate.OdeResult
        ``t`` and ``y`` (shape ``(dim, len(t))``), from ``solve_ivp`` (LSODA).
    """
    _check_price_game(game)
    safe_set = game.incentive_set if safe_set is None else safe_set
    theta0 = safe_set.validate(theta0, "theta0")
    t_final = check_scalar(t_final, "t_final", low=1e-9)
    horizon = check_scalar(projection_horizon, "projection_horizon", low=1e-9)
    rtol = check_scalar(rtol, "rtol", low=1e-14, high=1.0)
    atol = check_scalar(atol, "atol", low=0.0, low_inclusive=False)
    max_evaluations = check_positive_int(max_evaluations, "max_evaluations")
    evaluations = 0

    def velocity(_, theta):
        nonlocal evaluations
        evaluations += 1
        if evaluations > max_evaluations:
            raise RuntimeError(f"the social-gradient flow needed more than {max_evaluations} evaluations")
        theta = safe_set.project(theta)
        gradient = game._social_cost_grad_x(game._equilibrium(theta), theta)
        return (safe_set.project(theta + horizon * gradient) - theta) / horizon

    solution = solve_ivp(
        velocity, (0.0, t_final), theta0, method="LSODA", t_eval=t_eval, rtol=rtol, atol=atol
    )
    if not solution.success:
        raise RuntimeError(f"the social-gradient flow failed: {solution.message}")
    solution.y = np.apply_along_axis(safe_set.project, 0, solution.y)
    return solution
