"""Baseline planners: no incentive, a fixed incentive, the oracle first best, and SPSA."""

from __future__ import annotations

import numpy as np
import scipy.optimize

from incentive_envs.core import IncentiveGame
from incentive_envs.validation import check_positive_int, check_scalar
from planners.base import Planner
from planners.hypergradient import exact_hypergradient


class NoIncentivePlanner(Planner):
    """Leaves the incentive at ``Proj_Θ(0)`` forever.

    Information structure: observes nothing, uses nothing of the model.
    """

    name = "none"

    def update(self, theta, x, k):
        return self.initial_incentive()


class FixedIncentivePlanner(Planner):
    """Posts one given incentive forever.

    Information structure: observes nothing, uses nothing of the model.
    """

    name = "fixed"

    def __init__(self, game: IncentiveGame, incentive):
        super().__init__(game)
        self.incentive = game.validate_incentive(incentive, "incentive")

    def initial_incentive(self):
        return self.incentive.copy()

    def update(self, theta, x, k):
        return self.incentive.copy()


def optimal_incentive(game: IncentiveGame, tolerance: float = 1e-12) -> np.ndarray:
    """A minimiser ``θ*`` of ``f*(θ) = f(θ, x*(θ))`` over Θ, from the full model.

    Uses the game's closed-form first-best incentive when it has one
    (``game.first_best_incentive()``), otherwise L-BFGS-B on ``f*`` with the exact implicit
    hypergradient at exact equilibria. The latter is a local method: with box strategy sets
    ``f*`` is flat in the incentive of an agent pinned at a bound, so it can stop at a
    stationary point that is not the global minimum.
    """
    try:
        return game.first_best_incentive().theta
    except NotImplementedError:
        pass
    incentive_set = game.incentive_set
    result = scipy.optimize.minimize(
        lambda theta: game.equilibrium_social_cost(theta),
        incentive_set.project(np.zeros(incentive_set.dim)),
        jac=lambda theta: exact_hypergradient(game, theta),
        bounds=list(zip(incentive_set.lower, incentive_set.upper)),
        method="L-BFGS-B",
        options={"ftol": tolerance, "gtol": tolerance, "maxiter": 10_000},
    )
    return incentive_set.project(result.x)


class OraclePlanner(Planner):
    """Posts the optimal (first-best/Pigouvian where implementable) incentive from the start.

    Information structure: observes nothing; uses the full game model (equilibrium solver,
    social optimum, or the game's closed-form first-best incentive).
    """

    name = "oracle"

    def __init__(self, game: IncentiveGame):
        super().__init__(game)
        self.incentive = optimal_incentive(game)

    def initial_incentive(self):
        return self.incentive.copy()

    def update(self, theta, x, k):
        return self.incentive.copy()


class ZerothOrderPlanner(Planner):
    """Two-point simultaneous-perturbation (SPSA) planner on the observed social cost.

    It alternates phases of ``probe_steps`` iterations: post ``θ + c_m Δ_m`` and record the
    social cost at the followers' strategy at the end of the phase, then post ``θ − c_m Δ_m``
    and record again, then step ``θ ← Proj_Θ(θ − a_m (f⁺ − f⁻)/(2c_m) Δ_m)`` with Rademacher
    ``Δ_m`` and Spall's gains ``a_m = a/(m + 1 + A)^0.602``, ``c_m = c/(m + 1)^0.101``.

    Information structure: observes only the social cost ``f(θ, x)`` of the outcomes it
    induces; uses no derivative, equilibrium or optimum from the model.

    Parameters
    ----------
    game : IncentiveGame
    rng : numpy.random.Generator
        Source of the perturbation directions.
    gain, perturbation : float
        ``a`` and ``c`` above.
    stability : float
        ``A >= 0`` above.
    probe_steps : int
        Follower iterations per probe (the followers' time to respond).
    """

    name = "zeroth_order"

    def __init__(
        self,
        game: IncentiveGame,
        rng: np.random.Generator,
        *,
        gain: float = 1.0,
        perturbation: float = 1.0,
        stability: float = 10.0,
        probe_steps: int = 20,
    ):
        super().__init__(game)
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        self.rng = rng
        self.gain = check_scalar(gain, "gain", low=0.0, low_inclusive=False)
        self.perturbation = check_scalar(perturbation, "perturbation", low=0.0, low_inclusive=False)
        self.stability = check_scalar(stability, "stability", low=0.0)
        self.probe_steps = check_positive_int(probe_steps, "probe_steps")
        self.center: np.ndarray | None = None
        self._round = 0
        self._phase_step = 0
        self._sign = 1.0
        self._direction = np.zeros(game.incentive_set.dim)
        self._cost_plus = 0.0

    def _scales(self) -> tuple[float, float]:
        return (
            self.gain / (self._round + 1 + self.stability) ** 0.602,
            self.perturbation / (self._round + 1) ** 0.101,
        )

    def _probe(self, sign: float) -> np.ndarray:
        _, c = self._scales()
        return self.game.incentive_set.project(self.center + sign * c * self._direction)

    def initial_incentive(self):
        self.center = super().initial_incentive()
        self._direction = self.rng.choice([-1.0, 1.0], size=self.game.incentive_set.dim)
        return self._probe(1.0)

    def incentive_estimate(self, theta: np.ndarray) -> np.ndarray:
        """The incentive being optimised (the centre of the probes)."""
        return theta if self.center is None else self.center.copy()

    def update(self, theta, x, k):
        if self.center is None:
            self.initial_incentive()
        self._phase_step += 1
        if self._phase_step < self.probe_steps:
            return theta
        self._phase_step = 0
        cost = self.game.social_cost(x, theta)
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
            "center": None if self.center is None else self.center.tolist(),
            "round": self._round,
            "phase_step": self._phase_step,
            "sign": self._sign,
            "direction": self._direction.tolist(),
            "cost_plus": self._cost_plus,
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict) -> None:
        self.center = None if state["center"] is None else np.asarray(state["center"], dtype=np.float64)
        self._round = int(state["round"])
        self._phase_step = int(state["phase_step"])
        self._sign = float(state["sign"])
        self._direction = np.asarray(state["direction"], dtype=np.float64)
        self._cost_plus = float(state["cost_plus"])
        self.rng.bit_generator.state = state["rng"]
