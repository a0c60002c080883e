"""Path-based traffic equilibrium: projected Newton on path flows with column generation.

The user equilibrium with tolls ``π`` (or the system optimum) of
:mod:`incentive_envs.routing.assignment` is solved in path flows ``f`` grouped by OD pair:
minimise ``B(Δ f)`` (the Beckmann objective of the link flows ``x = Δ f``; for the system
optimum the total cost) subject to ``f >= 0`` and ``Σ_{p ∈ od} f_p = d_od``. Path costs are
``C = Δᵀ c(x)``; at the equilibrium every used path of an OD pair costs the pair's minimum.

One iteration (all OD pairs at once, segment reductions over the flat path arrays):

1. **Column generation.** Shortest-path trees from every origin under the current costs
   (``scipy.sparse.csgraph.dijkstra``, :class:`~incentive_envs.routing.assignment.ShortestPathGraph`)
   give the relative gap — the stopping rule — and, for every OD pair whose shortest path is
   cheaper than all its paths, a new path (extracted in bulk by binary lifting). Paths that
   carry no flow and are not their pair's cheapest are dropped at the same time; a pair keeps
   at most ``max_paths_per_od`` paths (a pair at the cap gets no new path until one is
   dropped, which shows as a gap that stops falling and a :class:`ConvergenceWarning`).
2. **Gradient projection step** of Jayakrishnan, Tsai, Prashker & Rajadhyaksha (1994),
   "A faster path-based algorithm for traffic assignment", *Transportation Research Record*
   1443, 75–83: per OD pair the cheapest path ``b`` is basic and every other path ``p`` moves
   ``min(f_p, (C_p − C_b)/s_p)`` to it, with Jayakrishnan's second-derivative scaling
   ``s_p = Σ_e c'_e |Δ_ep − Δ_eb|`` (the links of one path and not the other). Jayakrishnan
   et al. move one OD pair at a time, each seeing the costs the previous moves left; taken
   for all pairs at once the moves overshoot on shared links, so this step is scaled by its
   exact minimiser ``α`` on the quadratic model (the Cauchy point of Moré & Toraldo (1991),
   "On the solution of large quadratic programming problems with bound constraints",
   *SIAM Journal on Optimization* 1(1), 93–113).
3. **Projected Newton step**, which accounts for the coupling the simultaneous moves ignore
   (Bertsekas (1982), "Projected Newton methods for optimization problems with simple
   constraints", *SIAM Journal on Control and Optimization* 20(2), 221–246; Bertsekas &
   Gafni (1982), "Projection methods for variational inequalities with application to the
   traffic assignment problem", *Mathematical Programming Study* 17, 139–159). Paths that
   reach zero at the Cauchy point (``f_p <= α (C_p − C_b)/s_p``) are emptied onto their
   basic path; for the others the reduced Newton system ``(H + μ diag(s)) δ = −g`` with
   ``H = Bᵀ diag(c') B`` (``B``: incidence of each path minus that of its basic path, which
   couples all OD pairs through shared links; ``H`` is singular where paths outnumber the
   links they use, hence the Levenberg–Marquardt damping :data:`NEWTON_DAMPING`) is solved
   inexactly by conjugate gradients preconditioned with ``s`` (forcing term
   :data:`NEWTON_FORCING`; Dembo, Eisenstat & Steihaug (1982), "Inexact Newton methods",
   *SIAM Journal on Numerical Analysis* 19(2), 400–408).
4. **Projected arc search.** The Newton direction ``d`` (the scaled gradient ``−(C_p − C_b)/s_p``
   on the emptied paths) is followed along Bertsekas' projected arc ``P[f + τ d]`` — negative
   flows clipped to zero, the basic path taking the balance (the pair's simplex projection
   should it turn negative) — with the Armijo rule (:data:`ARMIJO`, ``τ = 1, 1/2, …``); the
   arc lets small flows reach zero at ``τ < 1`` instead of lingering. The gradient projection
   step of 2 with an exact line search is the safeguard: whichever lowers the objective more
   is taken (decreases measured as the integral of the slope by Gauss–Legendre quadrature,
   which keeps its digits where two objective values would cancel), so every iteration does
   at least as well as Jacobi gradient projection.

Warm starts: pass the previous result's :attr:`PathAssignmentResult.paths` as ``start``
(second-best tolling calls the solver for many nearby tolls). With
``column_generation=False`` the path set of ``start`` is fixed and the relative gap is taken
over it (the path-restricted problem of :meth:`~incentive_envs.routing.game.RoutingGame.social_optimum`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from incentive_envs.routing.assignment import (
    UNCONVERGED_ACTIONS,
    AssignmentResult,
    ShortestPathGraph,
    assignment_result,
    exact_line_search,
    link_cost_functions,
    report_unconverged,
    validated_tolls,
)
from incentive_envs.routing.linalg import projected_cg
from incentive_envs.routing.network import Network
from incentive_envs.validation import (
    MAX_SOLVER_ITERATIONS,
    as_finite_array,
    check_bool,
    check_choice,
    check_positive_int,
    check_scalar,
)

NEWTON_FORCING = 0.1
"""Conjugate gradients stop once the preconditioned residual norm falls by this factor."""

NEWTON_CG_ITERATIONS = 10
"""At most this many conjugate-gradient iterations per Newton step."""

NEWTON_DAMPING = 0.01
"""Levenberg–Marquardt damping: the Newton system is ``(H + μ diag(s)) δ = −g`` with this ``μ``
(``H`` is singular wherever paths outnumber the links they use)."""

ARMIJO = 1e-4
"""Sufficient-decrease fraction of the Armijo rule along the projected arc."""

ARC_MIN_STEP = 1e-4
"""The arc search halves its step down to this before it gives up on the Newton direction."""

DEFAULT_MAX_PATHS_PER_OD = 64
"""Default cap on the paths of one OD pair."""

DEMAND_TOLERANCE = 1e-9
"""Relative tolerance on a warm start's per-OD flow sums (then rescaled to the demand)."""


@dataclass(frozen=True, eq=False)
class PathFlows:
    """Paths grouped by OD pair, with flows.

    Path ``p`` belongs to OD pair ``od[p]`` (non-decreasing), uses the links
    ``links[offsets[p]:offsets[p + 1]]`` in travel order and carries ``flow[p]``.
    """

    od: np.ndarray
    offsets: np.ndarray
    links: np.ndarray
    flow: np.ndarray

    @property
    def n_paths(self) -> int:
        return int(self.od.shape[0])

    def path(self, p: int) -> tuple[int, ...]:
        """The links of path ``p``."""
        return tuple(int(e) for e in self.links[self.offsets[p] : self.offsets[p + 1]])

    def incidence(self, n_links: int) -> sp.csr_matrix:
        """The path–link incidence ``Δᵀ`` (``n_paths × n_links``, CSR)."""
        return sp.csr_matrix((np.ones(self.links.size), self.links, self.offsets), (self.n_paths, n_links))

    @classmethod
    def from_path_set(cls, paths, flow: np.ndarray) -> PathFlows:
        """From a :class:`~incentive_envs.routing.paths.PathSet` and one flow per path."""
        lengths = np.array([len(path) for path in paths.links], dtype=np.int64)
        return cls(
            od=np.asarray(paths.od, dtype=np.int64),
            offsets=np.concatenate(([0], np.cumsum(lengths))),
            links=np.concatenate([np.asarray(path, dtype=np.int64) for path in paths.links]),
            flow=np.asarray(flow, dtype=np.float64),
        )


@dataclass(frozen=True)
class PathAssignmentResult(AssignmentResult):
    """An :class:`~incentive_envs.routing.assignment.AssignmentResult` with the final path
    set and path flows (``paths``, to warm-start the next call) and the number of
    conjugate-gradient iterations spent in Newton steps."""

    paths: PathFlows | None = None
    cg_iterations: int = 0


def _validated_start(network: Network, start: PathFlows) -> PathFlows:
    """``start`` checked against ``network``: every OD pair has paths, each a chain of links
    from its origin to its destination through no zone, flows ``>= 0`` summing to the
    demand (to :data:`DEMAND_TOLERANCE`, then rescaled exactly)."""
    if not isinstance(start, PathFlows):
        raise ValueError(f"start must be PathFlows, got {type(start).__name__}")
    od = np.asarray(start.od)
    offsets = np.asarray(start.offsets)
    links = np.asarray(start.links)
    for name, array in (("start.od", od), ("start.offsets", offsets), ("start.links", links)):
        if array.ndim != 1 or array.dtype.kind not in "iu":
            raise ValueError(
                f"{name} must be a 1-D integer array, got dtype {array.dtype} shape {array.shape}"
            )
    n_paths = od.size
    flow = as_finite_array(start.flow, "start.flow", (n_paths,))
    if n_paths == 0 or offsets.shape != (n_paths + 1,) or offsets[0] != 0 or offsets[-1] != links.size:
        raise ValueError("start.offsets must have n_paths + 1 entries from 0 to len(start.links)")
    lengths = np.diff(offsets)
    if np.any(lengths < 1):
        raise ValueError(f"start path {int(np.flatnonzero(lengths < 1)[0])} has no links")
    if np.any(np.diff(od) < 0) or od[0] < 0 or od[-1] >= network.n_od:
        raise ValueError(f"start.od must be non-decreasing OD indices in [0, {network.n_od})")
    if np.unique(od).size != network.n_od:
        raise ValueError("start must give every OD pair at least one path")
    if links.min() < 0 or links.max() >= network.n_links:
        raise ValueError(f"start.links must be link indices in [0, {network.n_links})")
    if np.any(flow < 0):
        raise ValueError(f"start.flow must be >= 0, got {float(flow.min())!r}")
    last = offsets[1:] - 1
    inner = np.setdiff1d(np.arange(links.size), last)
    tails, heads = network.init_node[links], network.term_node[links]
    broken = inner[heads[inner] != tails[inner + 1]]
    through_zone = inner[heads[inner] < network.first_thru_node]
    ends_ok = (tails[offsets[:-1]] == network.origins[od]) & (heads[last] == network.destinations[od])
    if broken.size or through_zone.size or not ends_ok.all():
        owner = np.searchsorted(offsets, np.concatenate((broken, through_zone)), side="right") - 1
        bad = int(np.concatenate((owner, np.flatnonzero(~ends_ok))).min())
        raise ValueError(
            f"start path {bad} is not a path of OD pair {int(od[bad])} (it must chain links from "
            "the origin to the destination without passing through a zone)"
        )
    starts = np.flatnonzero(np.concatenate(([True], od[1:] != od[:-1])))
    totals = np.add.reduceat(flow, starts)
    off = np.abs(totals - network.demand) > DEMAND_TOLERANCE * network.demand
    if off.any():
        i = int(np.flatnonzero(off)[0])
        raise ValueError(
            f"start flows of OD pair {i} sum to {float(totals[i])!r}, not its demand {float(network.demand[i])!r}"
        )
    return PathFlows(
        od.astype(np.int64),
        offsets.astype(np.int64),
        links.astype(np.int64),
        flow * (network.demand / totals)[od],
    )


class PathSystem:
    """The mutable path set of a solve: flat arrays plus the incidence built on them.

    Kept between calls of :func:`equilibrium_iterations` it is a warm start that costs no
    validation or copying (second-best tolling moves it a few steps per toll update)."""

    def __init__(self, paths: PathFlows, n_links: int, demand: np.ndarray):
        self.n_links = n_links
        self.demand = demand
        self.od, self.offsets, self.links = paths.od, paths.offsets, paths.links
        self.flow = paths.flow.copy()
        self._rebuild()

    def _rebuild(self) -> None:
        self.incidence = sp.csr_matrix(
            (np.ones(self.links.size), self.links, self.offsets), (self.od.size, self.n_links)
        )
        self.transpose = self.incidence.T  # CSC view: Δ (links × paths) without a copy
        self.starts = np.flatnonzero(np.concatenate(([True], self.od[1:] != self.od[:-1])))
        self.is_basic = np.zeros(self.od.size, dtype=bool)

    def link_flow(self, path_flow: np.ndarray) -> np.ndarray:
        return self.transpose @ path_flow

    def cheapest(self, path_cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per OD pair the minimum path cost and the first path attaining it."""
        minimum = np.minimum.reduceat(path_cost, self.starts)
        candidates = np.where(path_cost == minimum[self.od], np.arange(path_cost.size), path_cost.size)
        return minimum, np.minimum.reduceat(candidates, self.starts)

    def update(self, keep: np.ndarray, new_od: np.ndarray, new_links: np.ndarray, new_lengths: np.ndarray):
        """Keep the paths ``keep`` and add paths (with zero flow), keeping OD order."""
        lengths = np.diff(self.offsets)
        od = np.concatenate((self.od[keep], new_od))
        all_lengths = np.concatenate((lengths[keep], new_lengths))
        flow = np.concatenate((self.flow[keep], np.zeros(new_od.size)))
        links = np.concatenate((self.links[np.repeat(keep, lengths)], new_links))
        first = np.cumsum(all_lengths) - all_lengths
        order = np.argsort(od, kind="stable")
        sorted_lengths = all_lengths[order]
        sorted_first = np.cumsum(sorted_lengths) - sorted_lengths
        shift = np.repeat(first[order] - sorted_first, sorted_lengths)
        self.links = links[np.arange(links.size) + shift]
        self.od, self.flow = od[order], flow[order]
        self.offsets = np.concatenate(([0], np.cumsum(sorted_lengths)))
        self._rebuild()

    def frozen(self) -> PathFlows:
        return PathFlows(self.od.copy(), self.offsets.copy(), self.links.copy(), self.flow.copy())


def all_or_nothing_paths(network: Network, graph: ShortestPathGraph, cost) -> PathFlows:
    """All-or-nothing on the shortest paths at zero flow."""
    _, predecessor, pair_link = graph.shortest_paths(cost(np.zeros(network.n_links)))
    links, lengths = graph.path_links(predecessor, pair_link, np.arange(network.n_od))
    return PathFlows(
        np.arange(network.n_od), np.concatenate(([0], np.cumsum(lengths))), links, network.demand.copy()
    )


def _segment_project_to_simplex(values: np.ndarray, segment: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """Euclidean projection of every segment of ``values`` onto ``{w >= 0, Σ w = total}``
    (Held, Wolfe & Crowder (1974), *Mathematical Programming* 6, 62–88: sort, find the last
    index whose value stays positive after the shift, shift), all segments at once."""
    order = np.lexsort((-values, segment))
    ranked = values[order]
    starts = np.flatnonzero(np.concatenate(([True], segment[order][1:] != segment[order][:-1])))
    owner = np.repeat(np.arange(starts.size), np.diff(np.append(starts, values.size)))
    running = np.cumsum(ranked)
    within = running - np.concatenate(([0.0], running))[starts][owner]
    rank = np.arange(values.size) - starts[owner] + 1
    positive = ranked - (within - totals[owner]) / rank > 0
    count = np.add.reduceat(positive.astype(np.int64), starts)
    shift = (within[starts + count - 1] - totals) / count
    projected = np.empty_like(values)
    projected[order] = np.maximum(ranked - shift[owner], 0.0)
    return projected


_GAUSS_LEGENDRE = ((0.5 - 0.5 * np.sqrt(0.6), 5 / 18), (0.5, 8 / 18), (0.5 + 0.5 * np.sqrt(0.6), 5 / 18))
"""Nodes and weights of three-point Gauss–Legendre quadrature on [0, 1]."""


def _decrease(cost, link_flow: np.ndarray, link_change: np.ndarray, step: float) -> float:
    """``φ(0) − φ(τ)`` for the objective ``φ`` along ``link_flow + τ link_change``: minus the
    integral of its slope ``cost(·) · link_change`` by three-point Gauss–Legendre quadrature
    (exact for BPR powers up to 4 and their marginal costs, and free of the cancellation of
    differencing two nearly equal objective values)."""
    total = 0.0
    for node, weight in _GAUSS_LEGENDRE:
        total += weight * float(cost(link_flow + node * step * link_change) @ link_change)
    return -step * total


def _newton_step(
    system: PathSystem, flow: np.ndarray, link_flow: np.ndarray, cost, cost_derivative
) -> tuple[np.ndarray, int]:
    """One projected Newton step (module docstring, steps 2–4); returns the new path flows
    and the conjugate-gradient iterations used."""
    od, starts = system.od, system.starts
    link_cost, slope = cost(link_flow), cost_derivative(link_flow)
    path_cost = system.incidence @ link_cost
    minimum, basic = system.cheapest(path_cost)
    is_basic = system.is_basic
    is_basic[:] = False
    is_basic[basic] = True
    excess = path_cost - minimum[od]
    # Jayakrishnan's s_p: c' summed over the links of p or of its basic path, not both.
    scaling = abs(system.incidence - system.incidence[basic[od]]) @ slope
    scaling = np.maximum(scaling, 1e-12 * max(float(scaling.max()), 1e-300))

    def absorb(change):  # the basic path takes what the others give up
        full = change.copy()
        full[basic] -= np.add.reduceat(change, starts)
        return full

    projection = absorb(np.where(is_basic, 0.0, -np.minimum(flow, excess / scaling)))
    projection_link = system.link_flow(projection)
    curvature = float(projection_link @ (slope * projection_link))
    descent = -float(path_cost @ projection)
    cauchy = min(1.0, descent / curvature) if curvature > 0 else 1.0
    free = ~is_basic & (flow > cauchy * excess / scaling)
    emptied = np.where(is_basic | free, 0.0, -flow)
    damping = NEWTON_DAMPING * scaling
    diagonal = np.where(free, scaling + damping, 1.0)

    def hessian(change):
        reduced = system.incidence @ (slope * system.link_flow(absorb(change)))
        return np.where(free, reduced - reduced[basic][od] + damping * change, 0.0)

    newton, iterations = projected_cg(
        hessian,
        lambda residual: np.where(free, residual, 0.0),
        lambda residual: np.where(free, residual / diagonal, 0.0),
        np.where(free, excess, 0.0) + hessian(emptied),
        NEWTON_FORCING**2,
        NEWTON_CG_ITERATIONS,
    )
    arc = np.where(free, newton, np.where(is_basic, 0.0, -excess / scaling))

    def arc_point(step):  # P[f + τ d]: clip at zero, the basic path takes the balance
        point = np.maximum(np.where(is_basic, 0.0, flow + step * arc), 0.0)
        point[basic] = system.demand - np.add.reduceat(point, starts)
        short = np.flatnonzero(point[basic] < 0)
        if short.size:
            members = np.flatnonzero(np.isin(od, short))
            segment = np.searchsorted(short, od[members])
            point[members] = _segment_project_to_simplex(point[members], segment, system.demand[short])
        return point

    best_flow, best_decrease = flow, 0.0
    step = 1.0
    while step >= ARC_MIN_STEP:
        point = arc_point(step)
        change = point - flow
        decrease = _decrease(cost, link_flow, system.link_flow(change), 1.0)
        if decrease > 0 and decrease >= -ARMIJO * float(path_cost @ change):
            best_flow, best_decrease = point, decrease
            break
        step *= 0.5
    step = exact_line_search(cost, cost_derivative, link_flow, projection_link)
    if _decrease(cost, link_flow, projection_link, step) > best_decrease:
        best_flow = flow + step * projection
    return best_flow, iterations


def path_equilibrium(
    network: Network,
    tolls: np.ndarray | None = None,
    *,
    system_optimal: bool = False,
    relative_gap: float = 1e-6,
    max_iterations: int = 1000,
    start: PathFlows | None = None,
    column_generation: bool = True,
    max_paths_per_od: int = DEFAULT_MAX_PATHS_PER_OD,
    graph: ShortestPathGraph | None = None,
    on_unconverged: str = "warn",
) -> PathAssignmentResult:
    """Path-based user equilibrium (or system optimum) by projected Newton steps with column
    generation (see the module docstring).

    Parameters
    ----------
    network : Network
    tolls : ndarray, shape (n_links,), optional
        Link tolls ``π_e >= 0`` in time units (UE only; transfers).
    system_optimal : bool
        Minimise the total cost ``Σ x_e c_e(x_e)`` instead.
    relative_gap : float
        Stop when ``(Σ_e c_e x_e − Σ_od d_od κ_od) / Σ_e c_e x_e`` is at most this (``κ``: the
        shortest path costs, or with ``column_generation=False`` the cheapest of each pair's
        paths).
    max_iterations : int
        Newton steps at most.
    start : PathFlows, optional
        A warm start (e.g. ``previous_result.paths``); default all-or-nothing at free flow.
    column_generation : bool
        Add shortest paths as they appear (and drop unused ones); ``False`` needs ``start``
        and solves over its fixed path set.
    max_paths_per_od : int
        Cap on the paths of one OD pair.
    graph : ShortestPathGraph, optional
        Reuse the shortest-path structures across calls.
    on_unconverged : {"warn", "raise"}
        At ``max_iterations`` above ``relative_gap``: warn and return, or raise
        :class:`~incentive_envs.routing.assignment.ConvergenceError`.
    """
    if not isinstance(network, Network):
        raise ValueError(f"network must be a Network, got {type(network).__name__}")
    tolerance = check_scalar(relative_gap, "relative_gap", low=0.0, low_inclusive=False)
    max_iterations = check_positive_int(max_iterations, "max_iterations", MAX_SOLVER_ITERATIONS)
    max_paths_per_od = check_positive_int(max_paths_per_od, "max_paths_per_od")
    column_generation = check_bool(column_generation, "column_generation")
    system_optimal = check_bool(system_optimal, "system_optimal")
    check_choice(on_unconverged, "on_unconverged", UNCONVERGED_ACTIONS)
    tolls = validated_tolls(network, tolls, system_optimal)
    if graph is not None and graph.network is not network:
        raise ValueError("graph must be built on the same network")
    if start is None and not column_generation:
        raise ValueError("column_generation=False solves over the paths of start: pass start")
    cost, cost_derivative = link_cost_functions(network, tolls, system_optimal)
    if start is not None:
        start = _validated_start(network, start)
    elif graph is None:
        graph = ShortestPathGraph(network)
    if column_generation and graph is None:
        graph = ShortestPathGraph(network)
    system = PathSystem(
        start if start is not None else all_or_nothing_paths(network, graph, cost),
        network.n_links,
        network.demand,
    )
    link_flow, gap, iteration, cg_iterations = equilibrium_iterations(
        system,
        cost,
        cost_derivative,
        tolerance,
        max_iterations,
        graph if column_generation else None,
        max_paths_per_od,
    )
    if gap > tolerance:
        what = "system optimum" if system_optimal else "user equilibrium"
        report_unconverged(f"path-based {what}", gap, tolerance, iteration, on_unconverged)
    base = assignment_result(network, link_flow, gap, iteration, tolerance)
    return PathAssignmentResult(**vars(base), paths=system.frozen(), cg_iterations=cg_iterations)


def equilibrium_iterations(
    system: PathSystem,
    cost,
    cost_derivative,
    tolerance: float,
    max_iterations: int,
    graph: ShortestPathGraph | None,
    max_paths_per_od: int = DEFAULT_MAX_PATHS_PER_OD,
) -> tuple[np.ndarray, float, int, int]:
    """Iterations 1–4 of the module docstring on ``system`` in place (unchecked): at most
    ``max_iterations`` Newton steps, stopping once the relative gap is at most ``tolerance``.

    ``cost``/``cost_derivative`` map link flows to the users' link costs (tolls included) and
    their slopes; ``graph`` enables column generation (``None``: the fixed path set, the gap
    taken over it). Returns ``(link_flow, relative_gap, iterations, cg_iterations)`` with the
    gap of the returned flows.
    """
    demand = system.demand
    n_od = demand.size
    cg_iterations = 0
    iteration = 0
    while True:
        flow = system.flow
        link_flow = system.link_flow(flow)
        link_cost = cost(link_flow)
        path_cost = system.incidence @ link_cost
        minimum, _ = system.cheapest(path_cost)
        if graph is not None:
            od_cost, predecessor, pair_link = graph.shortest_paths(link_cost)
        else:
            od_cost = minimum
        total = float(path_cost @ flow)
        gap = (total - float(demand @ od_cost)) / total if total > 0 else 0.0
        if gap <= tolerance or iteration == max_iterations:
            return link_flow, gap, iteration, cg_iterations
        if graph is not None:
            new = np.flatnonzero(od_cost < minimum * (1.0 - 1e-12))
            keep = (flow > 0) | (path_cost <= minimum[system.od])
            counts = np.bincount(system.od[keep], minlength=n_od)
            new = new[counts[new] < max_paths_per_od]
            if new.size or not keep.all():
                new_links, new_lengths = graph.path_links(predecessor, pair_link, new)
                system.update(keep, new, new_links, new_lengths)
                link_flow = system.link_flow(system.flow)
        system.flow, used = _newton_step(system, system.flow, link_flow, cost, cost_derivative)
        cg_iterations += used
        iteration += 1
