"""The planner interface: an incentive designer on the slow timescale.

A planner is bound to a game's model at construction and exposes

* ``update(theta, x, k) -> theta_next``: the incentive step after the followers reached the
  joint strategy ``x`` (observed) at incentive ``theta``, in iteration ``k`` (validated; the
  engine calls the unchecked ``_update``);
* ``advance_followers(learner, x, theta, k, rng, noise_std) -> x_next``: how the followers
  move before that step when a run drives them with a learner (default: one learner step,
  the single-loop protocol; double-loop planners solve the lower level to a tolerance);
* ``incentive_estimate(theta)``: its current answer (differs from the posted incentive only
  for probing planners);
* ``reset(seed)``: start over (a fresh state; stochastic planners reseed their generator);
* ``state_dict()`` / ``load_state_dict()``: its internal state, for checkpoints.

Each planner states its *information structure* (the class attribute ``information`` and its
docstring): what it observes and which parts of the game model it uses.
"""

from __future__ import annotations

import numpy as np

from agents.play import model_feedback
from incentive_envs.core import IncentiveGame
from incentive_envs.validation import check_iteration, check_seed


class Planner:
    """Base class (see the module docstring). Subclasses override :meth:`_update`."""

    name = "planner"
    information = "observes nothing; uses nothing of the model"

    def __init__(self, game: IncentiveGame):
        if not isinstance(game, IncentiveGame):
            raise ValueError(f"game must be an IncentiveGame, got {type(game).__name__}")
        self.game = game

    def initial_incentive(self) -> np.ndarray:
        """The incentive a run starts from: the projection of 0 onto Θ."""
        return self.game.incentive_set.project(np.zeros(self.game.incentive_set.dim))

    def update(self, theta, x, k: int) -> np.ndarray:
        """``θ_{k+1}`` after the followers played ``x`` at ``θ_k = theta`` (both validated: ``θ``
        inside Θ, ``x`` in the strategy set; nothing is clipped)."""
        theta = self.game.validate_incentive(theta)
        x = self.game.validate_strategy(x)
        return self._update(theta, x, check_iteration(k))

    def _update(self, theta: np.ndarray, x: np.ndarray, k: int) -> np.ndarray:
        raise NotImplementedError

    def incentive_estimate(self, theta: np.ndarray) -> np.ndarray:
        """The incentive the planner currently proposes as its answer, given the posted
        ``theta`` (they differ only for planners that probe, such as SPSA)."""
        return theta

    def advance_followers(
        self,
        learner,
        x: np.ndarray,
        theta: np.ndarray,
        k: int,
        rng: np.random.Generator | None = None,
        noise_std: float = 0.0,
    ) -> np.ndarray:
        """One learner step at the current incentive (paper eq. 4.4); unchecked."""
        return learner._step(x, k, model_feedback(self.game, learner, x, theta, rng, noise_std))

    def reset(self, seed: int | None = None) -> None:
        """Start over from a fresh state; ``seed`` (a non-negative integer) reseeds stochastic
        planners. Deterministic planners without state have nothing to reset."""
        if seed is not None:
            check_seed(seed)

    def state_dict(self) -> dict:
        """JSON-serialisable internal state (none by default)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        if state != {}:
            raise ValueError(f"{type(self).__name__} has no state to load, got {state!r}"[:200])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.game!r})"
