"""Link-based traffic assignment: shortest-path trees, all-or-nothing loading and the
bi-conjugate Frank–Wolfe user equilibrium (SPEC G2, the ``η = 0`` lower level).

With the network's generalised link costs ``c_e`` (BPR travel time plus fixed cost, see
:mod:`incentive_envs.routing.network`) and link tolls ``π``, the user equilibrium (UE)
minimises the Beckmann objective (Beckmann, McGuire & Winsten (1956), *Studies in the
Economics of Transportation*, Yale University Press)

    B(x) = Σ_e ∫_0^{x_e} c_e(s) ds + Σ_e π_e x_e

over feasible link flows; the system optimum (SO) minimises the total cost
``Σ_e x_e c_e(x_e)`` (``TSTT`` without fixed costs), i.e. it is the UE under the marginal
costs ``c_e + x_e c'_e``. Both are solved by the bi-conjugate Frank–Wolfe method of
Mitradjieva & Lindberg (2013), "The stiff is moving — conjugate direction Frank–Wolfe
methods with applications to traffic assignment", *Transportation Science* 47(2), 280–293:
the search direction combines the all-or-nothing point with the two previous directions so
that consecutive directions are conjugate with respect to the Hessian ``diag(c'(x))``; the
step is an exact line search. The relative gap

    gap(x) = (Σ_e c_e x_e − Σ_od d_od κ_od) / Σ_e c_e x_e      (κ_od: shortest path cost)

bounds the distance to optimality and is the stopping rule. A solver that stops at its
iteration limit first warns (:class:`ConvergenceWarning`) or raises
(:class:`ConvergenceError`), as its ``on_unconverged`` argument says.

The path-based solver for the same problems is
:func:`incentive_envs.routing.path_assignment.path_equilibrium`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from incentive_envs.routing.network import Network
from incentive_envs.validation import (
    MAX_SOLVER_ITERATIONS,
    as_finite_array,
    check_choice,
    check_positive_int,
    check_scalar,
)


class ConvergenceWarning(RuntimeWarning):
    """An equilibrium solver stopped at its iteration limit above the requested relative gap."""


class ConvergenceError(RuntimeError):
    """Raised instead of :class:`ConvergenceWarning` when ``on_unconverged="raise"``."""


UNCONVERGED_ACTIONS = ("warn", "raise")
"""What a solver does when it stops unconverged: warn, or raise :class:`ConvergenceError`."""


def report_unconverged(
    solver: str, relative_gap: float, tolerance: float, iterations: int, on_unconverged: str
) -> None:
    """Warn (or raise) that ``solver`` stopped after ``iterations`` at ``relative_gap > tolerance``."""
    message = (
        f"{solver} stopped after {iterations} iterations at relative gap {relative_gap:.3g} "
        f"> {tolerance:.3g} (raise max_iterations, or loosen relative_gap)"
    )
    if on_unconverged == "raise":
        raise ConvergenceError(message)
    warnings.warn(message, ConvergenceWarning, stacklevel=3)


class ShortestPathGraph:
    """Repeated shortest-path trees, all-or-nothing loading and path extraction on a fixed
    network.

    The sparse graph is built once; every call writes the new link costs into its data array
    in place. Parallel links collapse to the cheapest one per call; zones below
    ``network.first_thru_node`` are split into a source copy (carrying the zone's outgoing
    links, used only as a path's origin) and a sink (incoming links only), so paths never
    pass through a zone. Trees are grown by ``scipy.sparse.csgraph.dijkstra`` from every
    origin at once and loaded without a loop over tree levels (:func:`_subtree_sums`).
    """

    def __init__(self, network: Network):
        if not isinstance(network, Network):
            raise ValueError(f"network must be a Network, got {type(network).__name__}")
        self.network = network
        n_nodes = network.n_nodes
        blocked = network.first_thru_node
        tail = np.where(network.init_node < blocked, network.init_node + n_nodes, network.init_node)
        self.n_graph_nodes = n_nodes + blocked
        keys = tail * self.n_graph_nodes + network.term_node
        self._link_order = np.argsort(keys, kind="stable")
        sorted_keys = keys[self._link_order]
        starts = np.flatnonzero(np.concatenate(([True], sorted_keys[1:] != sorted_keys[:-1])))
        self._pair_starts = starts
        self._pair_sizes = np.diff(np.append(starts, sorted_keys.size))
        self._pair_keys = sorted_keys[starts]
        self._has_parallel = starts.size < network.n_links
        pair_tail = self._pair_keys // self.n_graph_nodes
        # Pairs are sorted by (tail, head): exactly the order of a CSR matrix's data.
        self._graph = sp.csr_matrix(
            (
                np.ones(starts.size),
                self._pair_keys % self.n_graph_nodes,
                np.searchsorted(pair_tail, np.arange(self.n_graph_nodes + 1)),
            ),
            shape=(self.n_graph_nodes, self.n_graph_nodes),
        )
        self.origins, od_row = np.unique(network.origins, return_inverse=True)
        self.od_row = od_row
        """Row of every OD pair's origin in the shortest-path arrays."""
        self.sources = np.where(self.origins < blocked, self.origins + n_nodes, self.origins)
        """Graph node of every origin (the source copy of a zone)."""
        self._demand = np.zeros((self.origins.size, self.n_graph_nodes))
        self._demand[od_row, network.destinations] = network.demand

    def shortest_paths(self, link_cost: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Shortest-path trees from every origin under ``link_cost``.

        Returns
        -------
        od_cost : ndarray, shape (n_od,)
            The shortest path cost ``κ_od`` of every OD pair (``ValueError`` if some pair is
            not connected).
        predecessor : ndarray of int, shape (n_origins, n_graph_nodes)
            Tree parent of every graph node (−9999 at roots and unreachable nodes).
        pair_link : ndarray of int
            The link used by each (tail, head) node pair of the graph at these costs.
        """
        ordered = link_cost[self._link_order]
        if self._has_parallel:
            cheapest = np.minimum.reduceat(ordered, self._pair_starts)
            position = np.arange(ordered.size)
            is_min = ordered == np.repeat(cheapest, self._pair_sizes)
            first_min = np.minimum.reduceat(np.where(is_min, position, ordered.size), self._pair_starts)
            pair_link = self._link_order[first_min]
        else:
            cheapest, pair_link = ordered, self._link_order
        self._graph.data[:] = cheapest
        distance, predecessor = dijkstra(self._graph, indices=self.sources, return_predecessors=True)
        od_cost = distance[self.od_row, self.network.destinations]
        if not np.all(np.isfinite(od_cost)):
            k = int(np.flatnonzero(~np.isfinite(od_cost))[0])
            raise ValueError(
                f"OD pair {k} ({int(self.network.origins[k])} -> {int(self.network.destinations[k])}) "
                "is not connected"
            )
        return od_cost, predecessor, pair_link

    def _tree_links(self, predecessor: np.ndarray, pair_link: np.ndarray, nodes: np.ndarray) -> np.ndarray:
        """The link from ``predecessor`` to each node of ``nodes`` (flat indices into
        ``predecessor``; every one must have a parent)."""
        head = nodes % self.n_graph_nodes
        tail = predecessor.ravel()[nodes]
        return pair_link[np.searchsorted(self._pair_keys, tail * self.n_graph_nodes + head)]

    def all_or_nothing(self, link_cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Load every OD demand on a shortest path under ``link_cost``.

        Returns
        -------
        link_flow : ndarray, shape (n_links,)
        od_cost : ndarray, shape (n_od,)
            The shortest path cost ``κ_od`` of every OD pair.
        """
        od_cost, predecessor, pair_link = self.shortest_paths(link_cost)
        parent = _flat_parents(predecessor)
        node_flow = _subtree_sums(parent, self._demand.ravel())
        loaded = np.flatnonzero((parent >= 0) & (node_flow > 0))
        links = self._tree_links(predecessor, pair_link, loaded)
        return np.bincount(links, node_flow[loaded], minlength=self.network.n_links), od_cost

    def path_links(
        self, predecessor: np.ndarray, pair_link: np.ndarray, od_pairs: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The links of the tree paths of ``od_pairs``, in travel order, concatenated.

        Ancestors are found by binary lifting on the pointer-doubling tables of
        :func:`_ancestor_tables` (hop ``j`` back from the destination composes the tables of
        the bits of ``j``), so there is no loop over path positions.

        Returns
        -------
        links : ndarray of int
            All paths' links back to back.
        lengths : ndarray of int, shape (len(od_pairs),)
            Links per path.
        """
        tables, depth = _ancestor_tables(_flat_parents(predecessor))
        ends = self.od_row[od_pairs] * self.n_graph_nodes + self.network.destinations[od_pairs]
        lengths = depth[ends]
        owner = np.repeat(np.arange(od_pairs.size), lengths)
        first = np.cumsum(lengths) - lengths
        back = np.arange(owner.size) - first[owner]  # hops back from the destination
        nodes = ends[owner]
        for level, table in enumerate(tables):
            jump = (back >> level) & 1 == 1
            nodes[jump] = table[nodes[jump]]
        links = np.empty(owner.size, dtype=np.int64)
        links[first[owner] + lengths[owner] - 1 - back] = self._tree_links(predecessor, pair_link, nodes)
        return links, lengths


def _flat_parents(predecessor: np.ndarray) -> np.ndarray:
    """Tree parents as flat indices into ``predecessor`` (−1 at roots and unreachable nodes)."""
    offsets = (np.arange(predecessor.shape[0]) * predecessor.shape[1])[:, None]
    return np.where(predecessor >= 0, predecessor + offsets, -1).ravel()


def _subtree_sums(parent: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``s_v = Σ_{w in the subtree of v} values_w`` on a forest given by ``parent`` (−1 at
    roots), by pointer doubling.

    With ``P`` the push-to-parent operator, ``s = (I − P)^{−1} values = Σ_m P^m values``, and
    since ``P`` is nilpotent, ``Σ_{m < 2^K} P^m = Π_{k < K} (I + P^{2^k})``: each round adds
    every value to its ``2^k``-th ancestor and squares the jump pointers (Hillis & Steele
    (1986), "Data parallel algorithms", *Communications of the ACM* 29(12), 1170–1183), so a
    forest of depth ``D`` takes ``⌈log2(D + 1)⌉`` vectorised rounds.
    """
    sums = values.copy()
    jump = parent
    while True:
        active = np.flatnonzero(jump >= 0)
        if not active.size:
            return sums
        sums += np.bincount(jump[active], sums[active], minlength=sums.size)
        following = np.full_like(jump, -1)
        following[active] = jump[jump[active]]
        jump = following


def _ancestor_tables(parent: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """The pointer-doubling tables ``J_k`` (``2^k``-th ancestor, −1 above a root) of a forest
    and every node's depth (links from its root) by Wyllie's list ranking (Wyllie (1979),
    *The Complexity of Parallel Computations*, PhD thesis, Cornell University): ``r_v`` is
    the distance to ``J(v)`` (to the root once ``J(v) = −1``); each round adds ``r_{J(v)}``
    and doubles ``J``, in ``⌈log2(D + 1)⌉`` vectorised rounds for depth ``D``."""
    tables = []
    depth = (parent >= 0).astype(np.int64)
    jump = parent
    while True:
        active = np.flatnonzero(jump >= 0)
        if not active.size:
            return tables, depth
        tables.append(jump)
        depth[active] += depth[jump[active]]
        following = np.full_like(jump, -1)
        following[active] = jump[jump[active]]
        jump = following


@dataclass(frozen=True)
class AssignmentResult:
    """A link-based equilibrium (or system optimum).

    Attributes
    ----------
    link_flow : ndarray
    link_cost : ndarray
        The network's generalised costs ``c_e(x_e)`` (planner tolls excluded; travel times
        when the network has no fixed costs).
    relative_gap : float
        Of the problem solved (under the users' costs with tolls, or the marginal costs).
    beckmann : float
        ``Σ_e ∫ c_e`` (tolls excluded; the collection's published UE objective).
    tstt : float
        Total system travel time ``Σ_e x_e t_e(x_e)`` (fixed costs and tolls excluded).
    total_cost : float
        ``Σ_e x_e c_e(x_e)``: TSTT plus the fixed costs (tolls excluded).
    iterations : int
    converged : bool
        Whether ``relative_gap`` reached the requested tolerance.
    """

    link_flow: np.ndarray
    link_cost: np.ndarray
    relative_gap: float
    beckmann: float
    tstt: float
    total_cost: float
    iterations: int
    converged: bool


def assignment_result(network: Network, flow: np.ndarray, gap: float, iterations: int, tolerance: float):
    """The :class:`AssignmentResult` of link flows ``flow`` (shared by the solvers)."""
    cost = network.link_cost(flow)
    return AssignmentResult(
        link_flow=flow,
        link_cost=cost,
        relative_gap=float(gap),
        beckmann=float(network.link_cost_integral(flow).sum()),
        tstt=float(network.link_travel_time(flow) @ flow),
        total_cost=float(cost @ flow),
        iterations=int(iterations),
        converged=bool(gap <= tolerance),
    )


def validated_tolls(network: Network, tolls, system_optimal: bool) -> np.ndarray:
    """``tolls`` checked (shape, finite, ``>= 0``; none with the system optimum), or zeros."""
    if tolls is None:
        return np.zeros(network.n_links)
    tolls = as_finite_array(tolls, "tolls", (network.n_links,))
    if np.any(tolls < 0):
        raise ValueError(f"tolls must be >= 0, got min {float(tolls.min())!r}")
    if system_optimal and np.any(tolls):
        raise ValueError("tolls are transfers and do not enter the system optimum; pass tolls=None")
    return tolls


def user_equilibrium(
    network: Network,
    tolls: np.ndarray | None = None,
    *,
    system_optimal: bool = False,
    relative_gap: float = 1e-6,
    max_iterations: int = 100_000,
    method: str = "bfw",
    graph: ShortestPathGraph | None = None,
    on_unconverged: str = "warn",
) -> AssignmentResult:
    """Link-based user equilibrium (or system optimum) by (bi-)conjugate Frank–Wolfe.

    Parameters
    ----------
    network : Network
    tolls : ndarray, shape (n_links,), optional
        Link tolls ``π_e >= 0`` in time units, added to the users' costs (UE only).
    system_optimal : bool
        Solve the system optimum (marginal costs) instead of the UE.
    relative_gap : float
        Stopping tolerance on the relative gap. The default 1e-6 is reached on the
        collection's networks (Chicago Sketch: about 400 iterations); matching published
        objectives to ~1e-6 needs ~1e-8 (many thousand iterations on large networks: prefer
        :func:`~incentive_envs.routing.path_assignment.path_equilibrium` there).
    max_iterations : int
    method : {"bfw", "cfw", "fw"}
        Bi-conjugate, conjugate or plain Frank–Wolfe directions.
    graph : ShortestPathGraph, optional
        Reuse the shortest-path structures across calls.
    on_unconverged : {"warn", "raise"}
        At ``max_iterations`` above ``relative_gap``: warn (:class:`ConvergenceWarning`) and
        return the last iterate, or raise :class:`ConvergenceError`.
    """
    if not isinstance(network, Network):
        raise ValueError(f"network must be a Network, got {type(network).__name__}")
    check_choice(method, "method", ("bfw", "cfw", "fw"))
    check_choice(on_unconverged, "on_unconverged", UNCONVERGED_ACTIONS)
    tolerance = check_scalar(relative_gap, "relative_gap", low=0.0, low_inclusive=False)
    max_iterations = check_positive_int(max_iterations, "max_iterations", MAX_SOLVER_ITERATIONS)
    tolls = validated_tolls(network, tolls, system_optimal)
    if graph is not None and graph.network is not network:
        raise ValueError("graph must be built on the same network")
    graph = ShortestPathGraph(network) if graph is None else graph
    cost, cost_derivative = link_cost_functions(network, tolls, system_optimal)
    flow, gap, iteration = frank_wolfe(
        cost,
        cost_derivative,
        graph.all_or_nothing,
        network.demand,
        network.n_links,
        tolerance,
        max_iterations,
        method,
    )
    if gap > tolerance:
        what = "system optimum" if system_optimal else "user equilibrium"
        report_unconverged(f"Frank-Wolfe ({method}) {what}", gap, tolerance, iteration, on_unconverged)
    return assignment_result(network, flow, gap, iteration, tolerance)


def link_cost_functions(network: Network, tolls: np.ndarray, system_optimal: bool):
    """The users' link costs ``c + π`` (or the marginal social costs ``c + x c'``) and their
    derivatives, as functions of the link flows: the gradient and Hessian diagonal of the
    Beckmann objective with tolls (or of the total cost)."""
    if system_optimal:
        return network.marginal_cost, network.marginal_cost_derivative

    def cost(flow):
        return network.link_cost(flow) + tolls

    return cost, network.link_cost_derivative


def frank_wolfe(cost, cost_derivative, load, demand, n_links, tolerance, max_iterations, method="bfw"):
    """(Bi-)conjugate Frank–Wolfe on a separable convex link objective whose gradient is ``cost``.

    ``load(link_cost) -> (link_flow, od_cost)`` is the all-or-nothing oracle. Returns
    ``(link_flow, relative_gap, iterations)``; the gap is that of the returned flow.
    """
    flow, _ = load(cost(np.zeros(n_links)))
    previous = second_previous = None  # link targets of the last two steps
    previous_step = 1.0
    gap = np.inf
    iteration = 0
    for iteration in range(1, max_iterations + 1):
        link_cost = cost(flow)
        target, od_cost = load(link_cost)
        total = float(link_cost @ flow)
        gap = (total - float(demand @ od_cost)) / total if total > 0 else 0.0
        if gap <= tolerance:
            break
        if method != "fw" and previous is not None:
            weights = _conjugate_weights(
                method, flow, target, previous, second_previous, previous_step, cost_derivative(flow)
            )
            target = sum(w * point for w, point in zip(weights, (target, previous, second_previous)) if w)
        direction = target - flow
        step = exact_line_search(cost, cost_derivative, flow, direction)
        flow = flow + step * direction
        second_previous, previous = previous, target
        previous_step = step
        if step >= 1.0 - 1e-12:  # the target itself: restart the conjugate memory
            previous = second_previous = None
    else:  # out of iterations: report the gap of the flow returned
        link_cost = cost(flow)
        total = float(link_cost @ flow)
        gap = (total - float(demand @ load(link_cost)[1])) / total if total > 0 else 0.0
    return flow, gap, iteration


def _conjugate_weights(method, flow, target, previous, second_previous, previous_step, hessian):
    """Weights of (all-or-nothing point, last target, second-last target) in the (bi-)conjugate
    target of Mitradjieva & Lindberg (2013): the new direction is conjugate to the previous
    one (two) with respect to ``diag(hessian)``."""
    aon_direction = target - flow
    last = previous - flow
    if method == "cfw" or second_previous is None:
        numerator = last @ (hessian * aon_direction)
        denominator = last @ (hessian * (target - previous))
        weight = numerator / denominator if denominator != 0 else 0.0
        if not 0.0 <= weight < 1.0 - 1e-6:  # no conjugate direction in the hull: a plain FW step
            weight = 0.0
        return 1.0 - weight, weight, 0.0
    two_back = previous_step * previous - flow + (1.0 - previous_step) * second_previous
    denominator_mu = two_back @ (hessian * (second_previous - previous))
    mu = -(two_back @ (hessian * aon_direction)) / denominator_mu if denominator_mu != 0 else 0.0
    mu = max(0.0, float(mu))
    denominator_nu = last @ (hessian * last)
    nu = -(last @ (hessian * aon_direction)) / denominator_nu if denominator_nu != 0 else 0.0
    nu = max(0.0, float(nu + mu * previous_step / (1.0 - previous_step)))
    beta0 = 1.0 / (1.0 + mu + nu)
    return beta0, nu * beta0, mu * beta0


def exact_line_search(cost, cost_derivative, flow, direction, iterations: int = 60) -> float:
    """Exact minimiser over ``τ ∈ [0, 1]`` of the convex objective along ``flow + τ direction``:
    the root of ``φ'(τ) = c(flow + τ d) · d`` by safeguarded Newton steps in a shrinking bracket."""
    low, high = 0.0, 1.0
    if cost(flow + direction) @ direction <= 0.0:
        return 1.0
    if cost(flow) @ direction >= 0.0:
        return 0.0
    scale = abs(float(cost(flow) @ direction))
    step = 0.5
    for _ in range(iterations):
        point = flow + step * direction
        slope = float(cost(point) @ direction)
        if abs(slope) <= 1e-15 * scale:
            return step
        if slope > 0:
            high = step
        else:
            low = step
        if high - low < 1e-15:
            return step
        curvature = float(cost_derivative(point) @ (direction * direction))
        newton = step - slope / curvature if curvature > 0 else -1.0
        step = newton if low < newton < high else 0.5 * (low + high)
    return step
