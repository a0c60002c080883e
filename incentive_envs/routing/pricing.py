"""Second-best congestion pricing at the deterministic user equilibrium.

Tolls ``θ`` on a fixed set of links (``π = E θ``, ``E`` the selection of the tolled links)
are chosen to minimise the total cost ``F(θ) = Σ_e x_e c_e(x_e)`` (the total system travel
time TSTT on networks without fixed costs) at the deterministic user equilibrium ``x(θ)``
under the users' costs ``c + π`` — the classic second-best problem (Verhoef (2002),
"Second-best congestion pricing in general networks", *Transportation Research Part B* 36(8),
707–729), a bilevel program whose lower level has unique link flows but not path flows.

**The hypergradient by sensitivity analysis on the used-path set.** At a user equilibrium
with path flows ``f`` on the path set of
:func:`~incentive_envs.routing.path_assignment.path_equilibrium`, pick for every OD pair a
*basic* used path ``b`` (the one with the largest flow) and let ``B`` be the
``m × n_links`` matrix whose rows are ``δ_p − δ_b`` (the incidence of every other used path
``p`` minus that of its basic path). Moving flow between used paths is ``x = x̄ + Bᵀ z``; on
the used set the equilibrium conditions are ``B (c(x) + E θ) = 0``. Under strict
complementarity (no unused path at its pair's minimum cost) the used set is locally stable
and the implicit function theorem gives ``B D Bᵀ dz = −B E dθ`` with ``D = diag(c'(x))``.
Hence, with ``g = ∇F(x) = c + x c'`` (the marginal social costs),

    (B D Bᵀ) w = B g,        ∇F(θ) = −Eᵀ Bᵀ w,                                   (1)

the deterministic-UE case of the sensitivity results of Tobin & Friesz (1988), "Sensitivity
analysis for equilibrium network flow", *Transportation Science* 22(4), 242–250, eq. (27)
there restricted to a nondegenerate used-path set, and of Patriksson (2004), "Sensitivity
analysis of traffic equilibria", *Transportation Science* 38(3), 258–281 (Theorem 4.5: link
flows are directionally differentiable; at a nondegenerate point the derivative is the
solution of the linear system above). ``B D Bᵀ`` is singular where used paths outnumber the
links separating them (link flows are unique, path flows are not); (1) is consistent and is
solved by conjugate gradients preconditioned with its diagonal ``s_p = Σ_e c'_e |δ_pe −
δ_be|`` — the second-derivative scaling of the gradient projection method of Jayakrishnan,
Tsai, Prashker & Rajadhyaksha (1994), "A faster path-based algorithm for traffic assignment",
*Transportation Research Record* 1443, 75–83 — which converges from zero to the minimum-norm
solution on the range. It is the limit ``η → 0`` of the logit game's adjoint system
(:mod:`incentive_envs.routing.game`), whose extra term ``η diag(d/q)`` vanishes on used
paths; the deterministic problem needs no continuation in ``η``.

**Methods** (:func:`second_best_tolls`, every lower-level solve warm-started from the
previous path flows, with column generation — shortest paths under the current tolled costs
join the path set, unused paths that are not their pair's cheapest leave it, at most
``max_paths_per_od`` per pair, see :mod:`incentive_envs.routing.path_assignment`):

* ``"single_loop"`` — simultaneous design and play (Liu, Li, Wang, Ban & Yu (2022),
  "Inducing equilibria via incentives: simultaneous design-and-play ensures global
  convergence", NeurIPS, Algorithm 1): per iteration the travellers take
  ``inner_steps`` projected Newton/gradient-projection steps at the current tolls, then the
  tolls take one projected step along (1) evaluated at the current, not yet equilibrated,
  flows, scaled per toll by a running root-mean-square of the hypergradients (Adam's second
  moment, Kingma & Ba (2015), "Adam: a method for stochastic optimization", ICLR, without
  its first moment) so that one step size serves every network;
* ``"double_loop"`` — every objective value and gradient at a user equilibrium solved to
  ``relative_gap``, minimised by L-BFGS-B (Byrd, Lu, Nocedal & Zhu (1995), "A limited memory
  algorithm for bound constrained optimization", *SIAM Journal on Scientific Computing* 16(5),
  1190–1208; the solve-then-differentiate scheme of Li, Yu, Zhang & Ban (2022),
  "Differentiable bilevel programming for Stackelberg congestion games", arXiv:2209.07618);
* ``"spsa"`` — two-point simultaneous perturbation (Spall (1992), "Multivariate stochastic
  approximation using a simultaneous perturbation gradient approximation", *IEEE
  Transactions on Automatic Control* 37(3), 332–341) on ``F`` at solved equilibria: the
  derivative-free baseline.

Every method's answer is scored by :func:`evaluate_tolls` (by default the link-based
Frank–Wolfe equilibrium to relative gap 1e-7), independently of the solver it optimised with.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from incentive_envs.routing.assignment import (
    AssignmentResult,
    ShortestPathGraph,
    link_cost_functions,
    user_equilibrium,
)
from incentive_envs.routing.linalg import projected_cg
from incentive_envs.routing.network import Network
from incentive_envs.routing.path_assignment import (
    DEFAULT_MAX_PATHS_PER_OD,
    PathSystem,
    all_or_nothing_paths,
    equilibrium_iterations,
    path_equilibrium,
)
from incentive_envs.validation import (
    as_finite_array,
    as_generator,
    check_choice,
    check_positive_int,
    check_scalar,
)

METHODS = ("single_loop", "double_loop", "spsa")
"""The methods of :func:`second_best_tolls`."""

USED_SHARE = 1e-9
"""A path is *used* in (1) when it carries more than this share of its pair's demand."""

ADJOINT_RTOL = 1e-12
"""Conjugate gradients on (1) stop once the preconditioned residual ``rᵀPr`` falls by this."""

ADJOINT_DAMPING = 1e-10
"""Relative diagonal damping of ``B D Bᵀ`` (keeps (1) definite where ``D`` vanishes on the
links two paths differ by, e.g. constant-cost connectors)."""

MAX_SOLVE_ITERATIONS = 10_000
"""Cap on Newton steps of one lower-level solve of the double loop and SPSA."""

WARM_UP_GAP = 1e-6
"""Every start first solves the lower level at its initial tolls to this gap (outside the
timed optimisation, as the untolled equilibrium a planner starts from is known)."""

SECOND_MOMENT = 0.999
"""Adam's ``β₂``: the memory of the running mean square that scales every toll's steps."""


def _tolled_links(network: Network, tolled_links) -> np.ndarray:
    tolled = np.asarray(tolled_links)
    if tolled.ndim != 1 or tolled.size == 0 or tolled.dtype.kind not in "iu":
        raise ValueError(
            f"tolled_links must be a non-empty 1-D list of link indices, got {tolled_links!r}"[:200]
        )
    if tolled.min() < 0 or tolled.max() >= network.n_links or np.unique(tolled).size != tolled.size:
        raise ValueError(
            f"tolled_links must be distinct links in [0, {network.n_links}), got {tolled.tolist()}"[:200]
        )
    return tolled.astype(np.int64)


def _check_network(network) -> Network:
    if not isinstance(network, Network):
        raise ValueError(f"network must be a Network, got {type(network).__name__}")
    return network


class TollingProblem:
    """The second-best problem on ``network`` with tolls on ``tolled_links``, holding the
    warm-started path flows of the lower level (see the module docstring).

    Parameters
    ----------
    network : Network
    tolled_links : sequence of int
        0-based links that carry a toll.
    toll_bounds : (float, float)
        ``0 <= low < high``: the box of every toll.
    max_paths_per_od : int
        Column-generation cap on the paths of one OD pair.
    """

    def __init__(
        self,
        network: Network,
        tolled_links,
        toll_bounds: tuple[float, float] = (0.0, 30.0),
        max_paths_per_od: int = DEFAULT_MAX_PATHS_PER_OD,
    ):
        self.network = _check_network(network)
        self.tolled_links = _tolled_links(network, tolled_links)
        low, high = toll_bounds
        low = check_scalar(low, "toll_bounds[0]", low=0.0)
        self.bounds = (low, check_scalar(high, "toll_bounds[1]", low=low, low_inclusive=False))
        self.max_paths_per_od = check_positive_int(max_paths_per_od, "max_paths_per_od")
        self.graph = ShortestPathGraph(network)
        cost, _ = link_cost_functions(network, np.zeros(network.n_links), False)
        self.system = PathSystem(
            all_or_nothing_paths(network, self.graph, cost), network.n_links, network.demand
        )

    @property
    def dim(self) -> int:
        return int(self.tolled_links.size)

    def validate_tolls(self, tolls, name: str = "tolls") -> np.ndarray:
        """``tolls`` as a float array of shape ``(dim,)`` inside the bounds, or ``ValueError``."""
        tolls = as_finite_array(tolls, name, (self.dim,))
        low, high = self.bounds
        bad = np.flatnonzero((tolls < low) | (tolls > high))
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"{name}[{i}] = {float(tolls[i])!r} is outside the toll bounds [{low}, {high}]")
        return tolls

    def link_tolls(self, tolls: np.ndarray) -> np.ndarray:
        """``π = E θ`` on all links."""
        full = np.zeros(self.network.n_links)
        full[self.tolled_links] = tolls
        return full

    def advance(
        self, tolls: np.ndarray, relative_gap: float, max_iterations: int
    ) -> tuple[np.ndarray, float]:
        """Move the path flows toward the equilibrium at ``tolls`` (unchecked): Newton steps
        with column generation until the relative gap is at most ``relative_gap`` or after
        ``max_iterations``; returns the link flows and their gap."""
        cost, cost_derivative = link_cost_functions(self.network, self.link_tolls(tolls), False)
        link_flow, gap, _, _ = equilibrium_iterations(
            self.system,
            cost,
            cost_derivative,
            relative_gap,
            max_iterations,
            self.graph,
            self.max_paths_per_od,
        )
        return link_flow, gap

    def objective(self, link_flow: np.ndarray) -> float:
        """``F = Σ_e x_e c_e(x_e)`` (tolls are transfers)."""
        return float(link_flow @ self.network.link_cost(link_flow))

    def hypergradient(self) -> np.ndarray:
        """``∇F(θ)`` of eq. (1) at the current path flows (the exact gradient at an
        equilibrium with a nondegenerate used-path set; the single loop's surrogate elsewhere)."""
        return ue_hypergradient(self.network, self.tolled_links, self.system)


def ue_hypergradient(network: Network, tolled_links: np.ndarray, system: PathSystem) -> np.ndarray:
    """Eq. (1) of the module docstring at the path flows of ``system`` (unchecked).

    Returns the gradient of ``Σ_e x_e c_e(x_e)`` with respect to the tolls of ``tolled_links``.
    """
    flow, od = system.flow, system.od
    used = flow > USED_SHARE * system.demand[od]
    largest = np.maximum.reduceat(flow, system.starts)
    candidates = np.where(flow == largest[od], np.arange(flow.size), flow.size)
    basic = np.minimum.reduceat(candidates, system.starts)
    used[basic] = False
    others = np.flatnonzero(used)
    if not others.size:
        return np.zeros(tolled_links.size)
    incidence = system.incidence
    differences = (incidence[others] - incidence[basic[od[others]]]).tocsr()
    link_flow = system.link_flow(flow)
    slope = network.link_cost_derivative(link_flow)
    scaling = abs(differences) @ slope
    scaling += ADJOINT_DAMPING * max(float(scaling.max()), 1e-300)
    damping = ADJOINT_DAMPING * scaling
    transpose = differences.T.tocsr()

    def matvec(w):
        return differences @ (slope * (transpose @ w)) + damping * w

    w, _ = projected_cg(
        matvec,
        lambda residual: residual,
        lambda residual: residual / scaling,
        -(differences @ network.marginal_cost(link_flow)),
        ADJOINT_RTOL,
        max(10 * others.size, 100),
    )
    return -(transpose @ w)[tolled_links]


def evaluate_tolls(
    network: Network,
    tolled_links,
    tolls,
    *,
    relative_gap: float = 1e-7,
    solver: str = "link",
    on_unconverged: str = "warn",
) -> AssignmentResult:
    """The deterministic user equilibrium under ``tolls`` on ``tolled_links``, solved
    independently of any planner: ``solver="link"`` is the bi-conjugate Frank–Wolfe of
    :func:`~incentive_envs.routing.assignment.user_equilibrium` (the reference), ``"path"``
    the path-based :func:`~incentive_envs.routing.path_assignment.path_equilibrium` (for
    large networks and tight gaps). The result's ``tstt`` and ``total_cost`` score the tolls;
    at zero tolls they are the untolled UE's.
    """
    network = _check_network(network)
    tolled = _tolled_links(network, tolled_links)
    values = as_finite_array(tolls, "tolls", (tolled.size,))
    if np.any(values < 0):
        raise ValueError(f"tolls must be >= 0, got min {float(values.min())!r}")
    check_choice(solver, "solver", ("link", "path"))
    full = np.zeros(network.n_links)
    full[tolled] = values
    solve = user_equilibrium if solver == "link" else path_equilibrium
    return solve(network, full, relative_gap=relative_gap, on_unconverged=on_unconverged)


def reference_costs(network: Network, relative_gap: float = 1e-10) -> tuple[float, float]:
    """Total costs ``Σ x c(x)`` of the untolled user equilibrium and of the system optimum
    (TSTT on networks without fixed costs), by the path-based solver to ``relative_gap``:
    the ends of the normalised objective ``(F − F_SO)/(F_UE − F_SO)``. Sioux Falls at 1e-10:
    7,480,225.34 and 7,194,256.05."""
    network = _check_network(network)
    ue = path_equilibrium(network, relative_gap=relative_gap, max_iterations=10_000)
    so = path_equilibrium(network, system_optimal=True, relative_gap=relative_gap, max_iterations=10_000)
    return ue.total_cost, so.total_cost


def most_congested_links(network: Network, count: int, relative_gap: float = 1e-6) -> np.ndarray:
    """The ``count`` links with the largest volume-to-capacity ratio ``x_e/cap_e`` at the
    untolled user equilibrium (path-based, to ``relative_gap``), sorted by index: a tolled set
    for networks without a published one (where congestion is worst, tolls move the most
    flow; ties broken by link index)."""
    network = _check_network(network)
    count = check_positive_int(count, "count", maximum=network.n_links)
    flow = path_equilibrium(network, relative_gap=relative_gap, max_iterations=10_000).link_flow
    order = np.lexsort((np.arange(network.n_links), -flow / network.capacity))
    return np.sort(order[:count])


@dataclass(frozen=True, eq=False)
class SecondBestResult:
    """What :func:`second_best_tolls` found.

    Attributes
    ----------
    method : str
    tolled_links : ndarray of int
    tolls : ndarray
        The tolls of ``tolled_links``, in their order.
    evaluation : AssignmentResult
        The scoring equilibrium of :func:`evaluate_tolls` at ``tolls``.
    normalised : float
        ``(F − F_SO)/(F_UE − F_SO)`` with ``F = evaluation.total_cost`` (0: the system optimum,
        1: no tolls).
    reference : (float, float)
        ``(F_UE, F_SO)``.
    iterations : int
        Toll updates of the winning start.
    cpu_s : float
        CPU time of the winning start's optimisation (evaluation excluded).
    trace : dict
        ``{"iteration", "cpu_s", "tolls"}`` arrays: the tolls every ``trace_every`` iterations
        with the CPU time spent when they were posted.
    start_normalised : tuple of float
        The normalised objective of every start (one entry without multi-start): its spread
        is the nonconvexity the starts ran into.
    """

    method: str
    tolled_links: np.ndarray
    tolls: np.ndarray
    evaluation: AssignmentResult
    normalised: float
    reference: tuple[float, float]
    iterations: int
    cpu_s: float
    trace: dict = field(repr=False)
    start_normalised: tuple[float, ...] = ()

    @property
    def tstt(self) -> float:
        """Total system travel time at the scoring equilibrium."""
        return self.evaluation.tstt

    @property
    def ms_per_iteration(self) -> float:
        return 1000.0 * self.cpu_s / max(self.iterations, 1)


@dataclass(frozen=True)
class _Run:
    tolls: np.ndarray
    iterations: int
    cpu_s: float
    trace: dict


class _Scaled:
    """Projected steps ``θ ← Proj(θ − α_k m̂_k / √v̂_k)`` with Adam's bias-corrected moments
    (Kingma & Ba 2015, Algorithm 1) and ``α_k = α/(1 + decay·k)``."""

    def __init__(self, dim: int, step: float, decay: float, momentum: float, bounds):
        self.step, self.decay, self.momentum, self.bounds = step, decay, momentum, bounds
        self.first, self.second = np.zeros(dim), np.zeros(dim)
        self.k = 0

    def __call__(self, tolls: np.ndarray, gradient: np.ndarray) -> np.ndarray:
        self.k += 1
        self.first += (1.0 - self.momentum) * (gradient - self.first)
        self.second += (1.0 - SECOND_MOMENT) * (gradient * gradient - self.second)
        first = self.first / (1.0 - self.momentum**self.k)
        scale = np.sqrt(self.second / (1.0 - SECOND_MOMENT**self.k))
        step = self.step / (1.0 + self.decay * (self.k - 1))
        move = np.divide(first, scale, out=np.zeros_like(first), where=scale > 0)
        return np.clip(tolls - step * move, *self.bounds)


@dataclass(frozen=True)
class MethodDefaults:
    """Default settings of one method of :func:`second_best_tolls` (tuned on Sioux Falls'
    18- and 20-link instances, see ``scripts/second_best_tolls.py``)."""

    iterations: int
    """Toll updates."""
    step: float
    """``α`` of the scaled step (toll units per update at the start)."""
    decay: float
    """``α_k = α/(1 + decay·k)``."""
    momentum: float = 0.9
    """Adam's ``β₁``."""
    relative_gap: float = 1e-9
    """Lower-level gap of the double loop and SPSA (the single loop takes ``inner_steps``)."""
    inner_steps: int = 1
    """Newton steps of the travellers per single-loop iteration."""
    perturbation: float = 0.5
    """SPSA's ``c``: probe radius (toll units) of ``c_m = c/(m + 1)^0.101``."""


DEFAULTS = {
    "single_loop": MethodDefaults(iterations=400, step=0.3, decay=0.05),
    "double_loop": MethodDefaults(iterations=300, step=0.3, decay=0.0),
    "spsa": MethodDefaults(iterations=300, step=0.3, decay=0.01, momentum=0.0),
}
"""The defaults of every method."""


def _optimise(
    problem: TollingProblem, tolls, settings: MethodDefaults, budget, trace_every, direction, keep_best
):
    """The shared loop of the methods: ``direction(tolls, k) -> (value or None, gradient)``
    then a scaled projected step; with ``keep_best`` the tolls of the lowest ``value`` (an
    objective at a solved equilibrium) are the answer, else the last tolls."""
    stepper = _Scaled(problem.dim, settings.step, settings.decay, settings.momentum, problem.bounds)
    trace = _Trace()
    start = time.process_time()
    best_value, best = np.inf, tolls
    k = 0
    for k in range(settings.iterations):
        if time.process_time() - start > budget:
            break
        value, gradient = direction(tolls, k)
        if keep_best and value < best_value:
            best_value, best = value, tolls
        if k % trace_every == 0:
            trace.add(k, time.process_time() - start, best if keep_best else tolls)
        tolls = stepper(tolls, gradient)
    else:
        k += 1
    answer = best if keep_best else tolls
    cpu = time.process_time() - start
    trace.add(k, cpu, answer)
    return _Run(answer, k, cpu, trace.arrays())


def _directions(problem: TollingProblem, settings: MethodDefaults, rng: np.random.Generator):
    """Each method's ``direction(tolls, k)`` for :func:`_optimise` and whether it keeps the best."""

    def solved(tolls):
        return problem.objective(problem.advance(tolls, settings.relative_gap, MAX_SOLVE_ITERATIONS)[0])

    def single_loop(tolls, k):  # the travellers move, then the surrogate of eq. (1)
        problem.advance(tolls, 0.0, settings.inner_steps)
        return None, problem.hypergradient()

    def double_loop(tolls, k):  # eq. (1) at the solved equilibrium
        value = solved(tolls)
        return value, problem.hypergradient()

    def spsa(tolls, k):
        direction = rng.choice([-1.0, 1.0], size=problem.dim)
        radius = settings.perturbation / (k + 1) ** 0.101
        plus = np.clip(tolls + radius * direction, *problem.bounds)
        minus = np.clip(tolls - radius * direction, *problem.bounds)
        spread = max(float((plus - minus) @ direction) / problem.dim, 1e-300)
        return None, (solved(plus) - solved(minus)) / spread * direction

    return {"single_loop": (single_loop, False), "double_loop": (double_loop, True), "spsa": (spsa, False)}


class _Trace:
    def __init__(self):
        self.iteration, self.cpu_s, self.tolls = [], [], []

    def add(self, k: int, cpu: float, tolls: np.ndarray) -> None:
        self.iteration.append(k)
        self.cpu_s.append(cpu)
        self.tolls.append(np.array(tolls))

    def arrays(self) -> dict:
        return {
            "iteration": np.array(self.iteration),
            "cpu_s": np.array(self.cpu_s),
            "tolls": np.array(self.tolls),
        }


def second_best_tolls(
    network: Network,
    tolled_links,
    method: str = "single_loop",
    *,
    toll_bounds: tuple[float, float] = (0.0, 30.0),
    initial_tolls=None,
    iterations: int | None = None,
    step: float | None = None,
    decay: float | None = None,
    relative_gap: float | None = None,
    max_cpu_s: float | None = None,
    starts: int = 1,
    seed: int | np.random.Generator = 0,
    max_paths_per_od: int = DEFAULT_MAX_PATHS_PER_OD,
    reference: tuple[float, float] | None = None,
    evaluation_gap: float = 1e-7,
    evaluation_solver: str = "link",
    trace_points: int = 50,
) -> SecondBestResult:
    """Second-best tolls on ``tolled_links`` minimising the total cost at the deterministic
    user equilibrium (see the module docstring for the methods and eq. (1)).

    Parameters
    ----------
    network : Network
    tolled_links : sequence of int
        0-based links that carry a toll.
    method : {"single_loop", "double_loop", "spsa"}
    toll_bounds : (float, float)
        The box of every toll (time units).
    initial_tolls : array_like, optional
        The first start (default zeros, projected into the box).
    iterations, step, decay : optional
        Override :data:`DEFAULTS` of the method (toll updates, ``α``, the decay of ``α_k``).
    relative_gap : float, optional
        Override the gap every lower-level solve of the double loop and SPSA reaches.
    max_cpu_s : float, optional
        Stop a start's optimisation after this much CPU time (default: no limit).
    starts : int
        Multi-start: the first from ``initial_tolls``, the others uniform in the box (the
        problem is nonconvex); the best by the scoring equilibrium is returned and every
        start's score is in ``start_normalised``.
    seed : int or numpy.random.Generator
        Source of the extra starts and of SPSA's directions.
    max_paths_per_od : int
        Column-generation cap on the paths of one OD pair.
    reference : (float, float), optional
        ``(F_UE, F_SO)`` of the normalisation; default :func:`reference_costs`.
    evaluation_gap, evaluation_solver :
        How the answer is scored (:func:`evaluate_tolls`).
    trace_points : int
        About this many entries in the trace.
    """
    network = _check_network(network)
    check_choice(method, "method", METHODS)
    problem = TollingProblem(network, tolled_links, toll_bounds, max_paths_per_od)
    base = DEFAULTS[method]
    settings = MethodDefaults(
        iterations=base.iterations if iterations is None else check_positive_int(iterations, "iterations"),
        step=base.step if step is None else check_scalar(step, "step", low=0.0, low_inclusive=False),
        decay=base.decay if decay is None else check_scalar(decay, "decay", low=0.0),
        momentum=base.momentum,
        relative_gap=base.relative_gap
        if relative_gap is None
        else check_scalar(relative_gap, "relative_gap", low=0.0, low_inclusive=False),
        inner_steps=base.inner_steps,
        perturbation=base.perturbation,
    )
    budget = (
        np.inf if max_cpu_s is None else check_scalar(max_cpu_s, "max_cpu_s", low=0.0, low_inclusive=False)
    )
    starts = check_positive_int(starts, "starts")
    trace_every = max(1, settings.iterations // check_positive_int(trace_points, "trace_points"))
    evaluation_gap = check_scalar(evaluation_gap, "evaluation_gap", low=0.0, low_inclusive=False)
    check_choice(evaluation_solver, "evaluation_solver", ("link", "path"))
    rng = as_generator(seed)
    first = (
        np.clip(np.zeros(problem.dim), *problem.bounds)
        if initial_tolls is None
        else problem.validate_tolls(initial_tolls, "initial_tolls")
    )
    if reference is None:
        reference = reference_costs(network)
    else:
        reference = tuple(check_scalar(value, "reference") for value in reference)
        if len(reference) != 2 or not reference[0] > reference[1]:
            raise ValueError(f"reference must be (F_UE, F_SO) with F_UE > F_SO, got {reference!r}")
    ue_cost, so_cost = reference
    outcomes = []
    for index in range(starts):
        tolls = first if index == 0 else rng.uniform(*problem.bounds, problem.dim)
        problem.advance(tolls, WARM_UP_GAP, MAX_SOLVE_ITERATIONS)
        direction, keep_best = _directions(problem, settings, rng)[method]
        run = _optimise(problem, tolls, settings, budget, trace_every, direction, keep_best)
        evaluation = evaluate_tolls(
            network, problem.tolled_links, run.tolls, relative_gap=evaluation_gap, solver=evaluation_solver
        )
        outcomes.append((evaluation, run))
    scores = [(evaluation.total_cost - so_cost) / (ue_cost - so_cost) for evaluation, _ in outcomes]
    best = int(np.argmin(scores))
    evaluation, run = outcomes[best]
    return SecondBestResult(
        method=method,
        tolled_links=problem.tolled_links,
        tolls=run.tolls,
        evaluation=evaluation,
        normalised=float(scores[best]),
        reference=(float(ue_cost), float(so_cost)),
        iterations=run.iterations,
        cpu_s=run.cpu_s,
        trace=run.trace,
        start_normalised=tuple(float(score) for score in scores),
    )
