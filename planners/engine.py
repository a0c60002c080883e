"""The experiment engine: the one loop in which followers learn and a planner designs.

:func:`simulate` is the only place the learner/planner interplay is written; everything
that runs a game × learner × planner — :func:`planners.experiment.run_experiment`, the
comparison (the main job), the robustness matrix, the sweeps, Table 1 and the scaling
benchmark — iterates it. One iteration ``k`` is

1. the followers move: ``x_{k+1} = planner.advance_followers(learner, x_k, θ_k, k, …)`` (one
   learner step for single-loop planners; a solved lower level for double loops);
2. the planner moves: ``θ_{k+1} = planner.update(θ_k, x_{k+1}, k)``;

and it yields a :class:`Record`. Timing covers steps 1–2 only (wall and CPU time); metrics are
computed afterwards from the exact model and are pluggable (:class:`Metric`). The default
metrics distinguish two things a reader must not confuse:

* ``objective_gap`` — the planner's objective at the **exact equilibrium of the incentive it
  proposes**, ``(f(θ̂, x*(θ̂)) − f*)/|f*|`` with ``θ̂ = planner.incentive_estimate(θ_{k+1})``:
  how good the incentive is, whatever the followers are doing right now;
* ``played_gap`` — the social cost of **what the followers actually played**,
  ``(f(θ_k, x_{k+1}) − f*)/|f*|``: in a single loop the followers are still far from
  ``x*(θ_k)`` early on, so this lags the objective gap;
* ``equilibrium_gap`` — how far the followers are from the equilibrium of the incentive they
  responded to: ``‖x_{k+1} − x*(θ_k)‖²`` on boxes, ``Σ_i KL(x*^i(θ_k) ‖ x^i_{k+1})`` on simplices;
* ``incentive_gap`` — ``‖θ̂ − θ*‖²`` where the optimal incentive θ* is unique, else ``None``.

(``f*`` is the first-best social cost; the gaps are absolute when ``f* = 0``.)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from agents.learners import Learner
from agents.policy_gradient import IterativeDesigner
from incentive_envs.core import IncentiveGame
from incentive_envs.episodic import EpisodicTask
from incentive_envs.validation import as_generator, check_int, check_positive_int, check_scalar
from planners.base import Planner


class Record(NamedTuple):
    """One iteration of :func:`simulate`.

    Attributes
    ----------
    iteration : int
        Iterations completed (1 for the first record).
    strategy : ndarray or None
        ``x_{k+1}``, the joint strategy the followers played this iteration (``None`` on
        episodic games, whose followers are policies: their play is in ``metrics``; so are
        ``responded_to``, ``incentive`` and ``estimate``).
    responded_to : ndarray
        ``θ_k``, the incentive in force while they played it.
    incentive : ndarray
        ``θ_{k+1}``, the incentive posted for the next iteration.
    estimate : ndarray
        The planner's proposed answer after this iteration (``incentive_estimate``).
    wall_time_s, cpu_time_s : float
        Cumulative time spent in the followers' and the planner's steps (metrics excluded).
    metrics : dict
        Metric name → value (``None`` where undefined); empty on iterations where metrics are
        not evaluated (see ``metric_every``).
    """

    iteration: int
    strategy: np.ndarray
    responded_to: np.ndarray
    incentive: np.ndarray
    estimate: np.ndarray
    wall_time_s: float
    cpu_time_s: float
    metrics: dict


class MetricContext:
    """What metrics share within one run: the game, its first best and a small cache of exact
    equilibria (consecutive metrics ask for the same incentives)."""

    def __init__(self, game: IncentiveGame):
        self.game = game
        self._f_star: float | None = None
        self._theta_star: np.ndarray | None | bool = False
        self._cache: dict[bytes, np.ndarray] = {}

    @property
    def f_star(self) -> float:
        """The first-best social cost ``f*`` (computed once)."""
        if self._f_star is None:
            self._f_star = float(self.game.social_optimum().value)
        return self._f_star

    @property
    def theta_star(self) -> np.ndarray | None:
        """The unique optimal incentive when the game knows it, else ``None``."""
        if self._theta_star is False:
            first_best = self.game.first_best_incentive()
            self._theta_star = first_best.theta if first_best is not None and first_best.unique else None
        return self._theta_star

    def equilibrium(self, theta: np.ndarray) -> np.ndarray:
        """``x*(θ)``, remembered for the two most recent incentives."""
        key = theta.tobytes()
        if key not in self._cache:
            if len(self._cache) >= 2:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = self.game._equilibrium(theta)
        return self._cache[key]

    def relative(self, cost: float) -> float:
        scale = abs(self.f_star)
        return (cost - self.f_star) / scale if scale > 0 else cost - self.f_star


@dataclass(frozen=True)
class Metric:
    """A named function ``(context, record) -> float | None`` evaluated after an iteration."""

    name: str
    description: str
    function: Callable[[MetricContext, Record], float | None]

    def __call__(self, context: MetricContext, record: Record) -> float | None:
        value = self.function(context, record)
        return None if value is None else float(value)


def _objective_gap(context, record):
    estimate = record.estimate
    return context.relative(context.game._social_cost(context.equilibrium(estimate), estimate))


def _played_gap(context, record):
    return context.relative(context.game._social_cost(record.strategy, record.responded_to))


def _equilibrium_gap(context, record):
    x, target = record.strategy, context.equilibrium(record.responded_to)
    if context.game.strategy_set.kind == "simplex":
        tiny = np.finfo(float).tiny
        terms = np.where(
            target > 0, target * (np.log(np.maximum(target, tiny)) - np.log(np.maximum(x, tiny))), 0.0
        )
        return float(np.sum(terms))
    return float(np.sum((x - target) ** 2))


def _incentive_gap(context, record):
    theta_star = context.theta_star
    return None if theta_star is None else float(np.sum((record.estimate - theta_star) ** 2))


OBJECTIVE_GAP = Metric(
    "objective_gap",
    "(f(θ̂, x*(θ̂)) − f*)/|f*|: the planner's objective at the exact equilibrium of its proposed incentive θ̂",
    _objective_gap,
)
PLAYED_GAP = Metric(
    "played_gap",
    "(f(θ_k, x_{k+1}) − f*)/|f*|: the social cost of what the followers actually played",
    _played_gap,
)
EQUILIBRIUM_GAP = Metric(
    "equilibrium_gap",
    "distance of the followers' play from the equilibrium of the incentive they responded to "
    "(‖x − x*‖² on boxes, Σ KL(x*‖x) on simplices)",
    _equilibrium_gap,
)
INCENTIVE_GAP = Metric(
    "incentive_gap", "‖θ̂ − θ*‖² where the optimal incentive θ* is unique (else None)", _incentive_gap
)
MODEL_METRICS = (OBJECTIVE_GAP, PLAYED_GAP, EQUILIBRIUM_GAP, INCENTIVE_GAP)
"""The default metrics of games with a model."""

EPISODIC_METRICS = {
    "welfare": "the followers' collective environment return per episode of the batch they trained on",
    "incentive_paid": "incentive paid per episode of that batch",
    "prosocial_share": "share of agent-steps taking the task's prosocial action (pulling the lever, cleaning)",
    "prosocial_events": "prosocial events per episode (lever pulls, waste cells cleaned)",
    "episodes": "follower episodes played so far",
    "optimality_gap": "(W* − welfare)/|W*| where the task knows its optimum W* (Escape Room)",
    "objective": "schedule tasks (the tax economy): the planner objective per episode of that batch",
}
"""The metrics of episodic games: each designer iteration's, plus the optimality gap."""


def episodic_metrics(task, values: dict) -> dict:
    """The JSON-ready metrics of one designer iteration on ``task`` (see :data:`EPISODIC_METRICS`)."""
    metrics = {
        key: float(values[key])
        for key in ("welfare", "incentive_paid", "prosocial_share", "prosocial_events")
    }
    metrics["episodes"] = int(values["episodes"])
    if "objective" in values:
        metrics["objective"] = float(values["objective"])
    optimum = getattr(task, "optimum", None)
    if optimum is not None:
        metrics["optimality_gap"] = (optimum - metrics["welfare"]) / abs(optimum)
    return metrics


def simulate(
    game: IncentiveGame,
    learner: Learner,
    planner: Planner,
    *,
    seed: int | np.random.Generator = 0,
    noise_std: float = 0.0,
    x0=None,
    theta0=None,
    iterations: int | None = None,
    start: int = 0,
    elapsed: tuple[float, float] = (0.0, 0.0),
    metrics: Sequence[Metric] = MODEL_METRICS,
    metric_every: int = 1,
) -> Iterator[Record]:
    """Run followers and planner together, yielding one :class:`Record` per iteration.

    Parameters
    ----------
    game : IncentiveGame or EpisodicTask
    learner : Learner or PolicyGradientLearners
        The followers' learner, built on ``game``.
    planner : Planner or IterativeDesigner
        Built on ``game`` (an episodic game's designer on ``learner``).
    seed : int or numpy.random.Generator
        Source of the feedback noise (a generator is used as is, e.g. a restored one).
    noise_std : float
        Standard deviation of Gaussian noise on the followers' gradient/payoff feedback.
    x0, theta0 : array_like, optional
        Initial joint strategy (default the strategy set's canonical point) and incentive
        (default ``planner.initial_incentive()``).
    iterations : int, optional
        Stop after this many iterations in total (``None``: run until the caller stops).
    start, elapsed : int, (float, float)
        Resume at iteration ``start`` with this much (wall, CPU) time already spent.
    metrics : sequence of Metric
        Evaluated after each ``metric_every``-th iteration and after the last one.
    metric_every : int

    Raises
    ------
    FloatingPointError
        When the followers' strategy or the incentive stops being finite (the run stops
        there instead of propagating NaN).
    """
    episodic = isinstance(game, EpisodicTask)
    if episodic:  # the designer runs the followers' batch and its own step (IterativeDesigner.iteration)
        if not isinstance(planner, IterativeDesigner) or planner.learners is not learner:
            raise ValueError("on an episodic game the planner must be a designer built on these learners")
    else:
        if not isinstance(game, IncentiveGame):
            raise ValueError(f"game must be an IncentiveGame or an EpisodicTask, got {type(game).__name__}")
        if not isinstance(learner, Learner) or learner.strategy_set.dim != game.strategy_set.dim:
            raise ValueError(f"learner must be a Learner built on the game's strategy set, got {learner!r}")
        if not isinstance(planner, Planner) or planner.game is not game:
            raise ValueError("planner must be a Planner built on this game (planner.game is game)")
        rng = as_generator(seed)
        noise_std = check_scalar(noise_std, "noise_std", low=0.0)
        x = game.strategy_set.uniform_point() if x0 is None else game.validate_strategy(x0, "x0")
        theta = planner.initial_incentive() if theta0 is None else game.validate_incentive(theta0, "theta0")
        context = MetricContext(game)
    k = check_int(start, "start", low=0)
    if iterations is not None:
        iterations = check_int(iterations, "iterations", low=0)
    metric_every = check_positive_int(metric_every, "metric_every")
    wall, cpu = (check_scalar(value, "elapsed", low=0.0) for value in elapsed)
    while iterations is None or k < iterations:
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        if episodic:
            values = planner.iteration()
        else:
            responded_to = theta
            x = planner.advance_followers(learner, x, theta, k, rng, noise_std)
            theta = planner._update(theta, x, k)
        wall += time.perf_counter() - wall_start
        cpu += time.process_time() - cpu_start
        k += 1
        if episodic:
            yield Record(k, None, None, None, None, wall, cpu, episodic_metrics(game, values))
            continue
        # one pass each: NaN and inf propagate to the sum
        if not (math.isfinite(np.add.reduce(x)) and math.isfinite(np.add.reduce(theta))):
            raise FloatingPointError(
                f"iteration {k}: the followers' strategy or the incentive became non-finite"
            )
        record = Record(k, x, responded_to, theta, planner.incentive_estimate(theta), wall, cpu, {})
        if metrics and (k % metric_every == 0 or k == iterations):
            record.metrics.update((metric.name, metric(context, record)) for metric in metrics)
        yield record
