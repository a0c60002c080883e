"""Baseline planners: no incentive, a fixed incentive, the oracle first best, and SPSA."""

from __future__ import annotations

import numpy as np
import scipy.optimize

from agents.learners import equilibrium_map_learner
from incentive_envs.core import IncentiveGame
from incentive_envs.validation import (
    MAX_ITERATION,
    as_generator,
    check_generator_state,
    check_int,
    check_positive_int,
    check_scalar,
)
from planners.base import Planner
from planners.hypergradient import DEFAULT_SOLVER, _implicit_hypergradient

MAX_PROBE_STEPS = 10**6
"""Largest accepted ``probe_steps`` of the SPSA planner (follower iterations per probe)."""


class NoIncentivePlanner(Planner):
    """Leaves the incentive at ``Proj_Θ(0)`` forever.

    Information structure: observes nothing, uses nothing of the model.
    """

    name = "none"
    information = "observes nothing; uses nothing of the model"

    def _update(self, theta, x, k):
        return self.initial_incentive()


class FixedIncentivePlanner(Planner):
    """Posts one given incentive forever.

    Information structure: observes nothing, uses nothing of the model.
    """

    name = "fixed"
    information = "observes nothing; uses nothing of the model"

    def __init__(self, game: IncentiveGame, incentive):
        super().__init__(game)
        self.incentive = game.validate_incentive(incentive, "incentive")

    def initial_incentive(self):
        return self.incentive.copy()

    def _update(self, theta, x, k):
        return self.incentive.copy()


def optimal_incentive(
    game: IncentiveGame, tolerance: float = 1e-12, max_iterations: int = 10_000
) -> np.ndarray:
    """A minimiser ``θ*`` of ``f*(θ) = f(θ, x*(θ))`` over Θ, from the full model.

    Uses the game's closed-form first-best incentive when it has one
    (``game.first_best_incentive()``), otherwise L-BFGS-B on ``f*`` with the exact implicit
    hypergradient at exact equilibria. The latter is a local method: with box strategy sets
    ``f*`` is flat in the incentive of an agent pinned at a bound, so it can stop at a
    stationary point that is not the global minimum.
    """
    tolerance = check_scalar(tolerance, "tolerance", low=0.0, low_inclusive=False)
    max_iterations = check_positive_int(max_iterations, "max_iterations")
    first_best = game.first_best_incentive()
    if first_best is not None:
        return first_best.theta
    incentive_set = game.incentive_set
    learner = equilibrium_map_learner(game.strategy_set)

    def hypergradient(theta):
        theta = incentive_set.project(theta)
        return _implicit_hypergradient(game, learner, game._equilibrium(theta), theta, 0, DEFAULT_SOLVER)

    result = scipy.optimize.minimize(
        lambda theta: game.equilibrium_social_cost(incentive_set.project(theta)),
        incentive_set.project(np.zeros(incentive_set.dim)),
        jac=hypergradient,
        bounds=list(zip(incentive_set.lower, incentive_set.upper)),
        method="L-BFGS-B",
        options={"ftol": tolerance, "gtol": tolerance, "maxiter": max_iterations},
    )
    return incentive_set.project(result.x)


class OraclePlanner(Planner):
    """Posts the optimal (first-best/Pigouvian where implementable) incentive from the start.

    Information structure: observes nothing; uses the full game model (equilibrium solver,
    social optimum, or the game's closed-form first-best incentive).
    """

    name = "oracle"
    information = "observes nothing; uses the full model (equilibrium solver, optimum, first-best incentive)"

    def __init__(self, game: IncentiveGame):
        super().__init__(game)
        self.incentive = optimal_incentive(game)

    def initial_incentive(self):
        return self.incentive.copy()

    def _update(self, theta, x, k):
        return self.incentive.copy()


class ZerothOrderPlanner(Planner):
    """Two-point simultaneous-perturbation (SPSA) planner on the observed social cost
    (Spall 1992, "Multivariate stochastic approximation using a simultaneous perturbation
    gradient approximation", IEEE Transactions on Automatic Control 37(3)).

    It alternates phases of ``probe_steps`` iterations: post ``θ + c_m Δ_m`` and record the
    social cost at the followers' strategy at the end of the phase, then post ``θ − c_m Δ_m``
    and record again, then step ``θ ← Proj_Θ(θ − a_m (f⁺ − f⁻)/(2c_m) Δ_m)`` with Rademacher
    ``Δ_m`` and Spall's gains ``a_m = a/(m + 1 + A)^0.602``, ``c_m = c/(m + 1)^0.101``.

    Information structure: observes only the social cost ``f(θ, x)`` of the outcomes it
    induces; uses no derivative, equilibrium or optimum from the model.

    Parameters
    ----------
    game : IncentiveGame
    seed : int or numpy.random.Generator
        Source of the perturbation directions; :meth:`reset` reseeds it.
    gain, perturbation : float
        ``a`` and ``c`` above.
    stability : float
        ``A >= 0`` above.
    probe_steps : int
        Follower iterations per probe (the followers' time to respond).
    """

    name = "zeroth_order"
    information = "observes only the social cost of the outcomes it induces; uses nothing of the model"

    def __init__(
        self,
        game: IncentiveGame,
        seed: int | np.random.Generator = 0,
        *,
        gain: float = 1.0,
        perturbation: float = 1.0,
        stability: float = 10.0,
        probe_steps: int = 20,
    ):
        super().__init__(game)
        self.rng = as_generator(seed)
        self.gain = check_scalar(gain, "gain", low=0.0, low_inclusive=False)
        self.perturbation = check_scalar(perturbation, "perturbation", low=0.0, low_inclusive=False)
        self.stability = check_scalar(stability, "stability", low=0.0)
        self.probe_steps = check_positive_int(probe_steps, "probe_steps", MAX_PROBE_STEPS)
        self._start()

    def _start(self) -> None:
        self.center = super().initial_incentive()
        self._round = 0
        self._phase_step = 0
        self._sign = 1.0
        self._direction = self.rng.choice([-1.0, 1.0], size=self.game.incentive_set.dim)
        self._cost_plus = 0.0

    def reset(self, seed: int | None = None) -> None:
        """Back to the first probe around ``Proj_Θ(0)``; ``seed`` reseeds the directions."""
        super().reset(seed)
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self._start()

    def _scales(self) -> tuple[float, float]:
        return (
            self.gain / (self._round + 1 + self.stability) ** 0.602,
            self.perturbation / (self._round + 1) ** 0.101,
        )

    def _probe(self, sign: float) -> np.ndarray:
        _, c = self._scales()
        return self.game.incentive_set.project(self.center + sign * c * self._direction)

    def initial_incentive(self) -> np.ndarray:
        """The first probe ``Proj_Θ(θ_0 + c_0 Δ_0)`` of the current round."""
        return self._probe(1.0)

    def incentive_estimate(self, theta: np.ndarray) -> np.ndarray:
        """The incentive being optimised (the centre of the probes)."""
        return self.center.copy()

    def _update(self, theta, x, k):
        self._phase_step += 1
        if self._phase_step < self.probe_steps:
            return theta
        self._phase_step = 0
        cost = self.game._social_cost(x, theta)
        if self._sign > 0:
            self._cost_plus, self._sign = cost, -1.0
            return self._probe(-1.0)
        a, c = self._scales()
        estimate = (self._cost_plus - cost) / (2.0 * c) * self._direction
        self.center = self.game.incentive_set.project(self.center - a * estimate)
        self._round += 1
        self._sign = 1.0
        self._direction = self.rng.choice([-1.0, 1.0], size=self.game.incentive_set.dim)
        return self._probe(1.0)

    def state_dict(self) -> dict:
        return {
            "center": self.center.tolist(),
            "round": self._round,
            "phase_step": self._phase_step,
            "sign": self._sign,
            "direction": self._direction.tolist(),
            "cost_plus": self._cost_plus,
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict) -> None:
        keys = {"center", "round", "phase_step", "sign", "direction", "cost_plus", "rng"}
        if not isinstance(state, dict) or set(state) != keys:
            raise ValueError(f"state must have the keys {sorted(keys)}, got {state!r}"[:300])
        dim = self.game.incentive_set.dim
        center = self.game.validate_incentive(state["center"], "state['center']")
        direction = np.asarray(state["direction"])
        if direction.shape != (dim,) or not np.all(np.isin(direction, (-1.0, 1.0))):
            raise ValueError(f"state['direction'] must be {dim} signs ±1, got {state['direction']!r}"[:200])
        sign = check_scalar(state["sign"], "state['sign']")
        if sign not in (-1.0, 1.0):
            raise ValueError(f"state['sign'] must be ±1, got {state['sign']!r}")
        rng_state = check_generator_state(self.rng, state["rng"], "state['rng']")
        round_ = check_int(state["round"], "state['round']", low=0, high=MAX_ITERATION)
        phase_step = check_int(state["phase_step"], "state['phase_step']", low=0, high=self.probe_steps)
        cost_plus = check_scalar(state["cost_plus"], "state['cost_plus']")
        # everything checked: now change the planner
        self.center, self._direction, self._sign = center, direction.astype(np.float64), sign
        self._round, self._phase_step, self._cost_plus = round_, phase_step, cost_plus
        self.rng.bit_generator.state = rng_state
