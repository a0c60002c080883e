"""Link-based traffic assignment: shortest-path trees, all-or-nothing loading and the
bi-conjugate Frank–Wolfe user equilibrium (SPEC G2, the ``η = 0`` lower level).

The user equilibrium (UE) with link tolls ``π`` minimises the Beckmann objective

    B(x) = Σ_e ∫_0^{x_e} t_e(s) ds + Σ_e π_e x_e

over feasible link flows; the system optimum (SO) minimises ``TSTT(x) = Σ_e x_e t_e(x_e)``,
i.e. it is the UE under marginal costs ``t_e + x_e t'_e``. Both are solved by the
bi-conjugate Frank–Wolfe method of Mitradjieva & Lindberg (2013, *Transportation Science*
47(2)): the search direction combines the all-or-nothing point with the two previous
directions so that consecutive directions are conjugate with respect to the Hessian
``diag(c'(x))``; the step is an exact line search. The relative gap

    gap(x) = (Σ_e c_e x_e − Σ_od d_od κ_od) / Σ_e c_e x_e      (κ_od: shortest path cost)

bounds the distance to optimality and is the stopping rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from incentive_envs.routing.network import Network
from incentive_envs.validation import as_finite_array, check_positive_int, check_scalar


class ShortestPathGraph:
    """Repeated shortest-path trees and all-or-nothing loading on a fixed network.

    Parallel links collapse to the cheapest one per call; zones below
    ``network.first_thru_node`` are split into a source copy (carrying the zone's outgoing
    links, used only as a path's origin) and a sink (incoming links only), so paths never
    pass through a zone.
    """

    def __init__(self, network: Network):
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
        self._pair_keys = sorted_keys[starts]
        self._pair_tail = self._pair_keys // self.n_graph_nodes
        self._pair_head = self._pair_keys % self.n_graph_nodes
        self._has_parallel = starts.size < network.n_links
        self.origins, od_row = np.unique(network.origins, return_inverse=True)
        self._od_row = od_row
        self._source = np.where(self.origins < blocked, self.origins + n_nodes, self.origins)
        self._demand = np.zeros((self.origins.size, self.n_graph_nodes))
        self._demand[od_row, network.destinations] = network.demand

    def _graph(self, link_cost: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
        ordered = link_cost[self._link_order]
        if self._has_parallel:
            cheapest = np.minimum.reduceat(ordered, self._pair_starts)
            position = np.arange(ordered.size)
            is_min = ordered == np.repeat(cheapest, np.diff(np.append(self._pair_starts, ordered.size)))
            first_min = np.minimum.reduceat(np.where(is_min, position, ordered.size), self._pair_starts)
            pair_link = self._link_order[first_min]
        else:
            cheapest, pair_link = ordered, self._link_order
        shape = (self.n_graph_nodes, self.n_graph_nodes)
        graph = sp.csr_matrix((cheapest, (self._pair_tail, self._pair_head)), shape=shape)
        return graph, pair_link

    def all_or_nothing(self, link_cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Load every OD demand on a shortest path under ``link_cost``.

        Returns
        -------
        link_flow : ndarray, shape (n_links,)
        od_cost : ndarray, shape (n_od,)
            The shortest path cost ``κ_od`` of every OD pair.
        """
        graph, pair_link = self._graph(link_cost)
        distance, predecessor = dijkstra(graph, indices=self._source, return_predecessors=True)
        od_cost = distance[self._od_row, self.network.destinations]
        if not np.all(np.isfinite(od_cost)):
            k = int(np.flatnonzero(~np.isfinite(od_cost))[0])
            raise ValueError(
                f"OD pair {k} ({int(self.network.origins[k])} -> {int(self.network.destinations[k])}) "
                "is not connected"
            )
        node_flow = self._demand.copy()
        rows = np.arange(self.origins.size)
        # Children before parents: sort by depth in the tree (distances tie on zero-cost links).
        depth = _tree_depth(predecessor)
        order = np.argsort(-depth, axis=1, kind="stable")
        link_ids, link_loads = [], []
        for rank in range(self.n_graph_nodes):
            node = order[:, rank]
            parent = predecessor[rows, node]
            valid = parent >= 0
            if not valid.any():
                break
            flow = node_flow[rows[valid], node[valid]]
            node_flow[rows[valid], parent[valid]] += flow
            pair = np.searchsorted(self._pair_keys, parent[valid] * self.n_graph_nodes + node[valid])
            link_ids.append(pair_link[pair])
            link_loads.append(flow)
        link_flow = np.bincount(
            np.concatenate(link_ids), np.concatenate(link_loads), minlength=self.network.n_links
        )
        return link_flow, od_cost


def _tree_depth(predecessor: np.ndarray) -> np.ndarray:
    """Number of links from the root of every node of every shortest-path tree (row), by
    pointer doubling; roots and unreachable nodes have depth 0."""
    rows = np.arange(predecessor.shape[0])[:, None]
    columns = np.arange(predecessor.shape[1])[None, :]
    jump = np.where(predecessor >= 0, predecessor, columns)
    depth = (predecessor >= 0).astype(np.int64)
    while True:
        next_jump = jump[rows, jump]
        if np.array_equal(next_jump, jump):
            return depth
        depth = depth + depth[rows, jump] * (jump != columns)
        jump = next_jump


@dataclass(frozen=True)
class AssignmentResult:
    """A link-based equilibrium (or system optimum).

    Attributes
    ----------
    link_flow, link_cost : ndarray
        Flows and travel times ``t_e(x_e)`` (tolls excluded).
    relative_gap : float
        Of the problem solved (under generalised or marginal costs).
    beckmann : float
        ``Σ_e ∫ t_e`` (tolls excluded; the published UE objective of Sioux Falls).
    tstt : float
        Total system travel time ``Σ_e x_e t_e(x_e)``.
    iterations : int
    converged : bool
        Whether ``relative_gap`` reached the requested tolerance.
    """

    link_flow: np.ndarray
    link_cost: np.ndarray
    relative_gap: float
    beckmann: float
    tstt: float
    iterations: int
    converged: bool


def user_equilibrium(
    network: Network,
    tolls: np.ndarray | None = None,
    *,
    system_optimal: bool = False,
    relative_gap: float = 1e-8,
    max_iterations: int = 20_000,
    method: str = "bfw",
    graph: ShortestPathGraph | None = None,
) -> AssignmentResult:
    """Link-based user equilibrium (or system optimum) by (bi-)conjugate Frank–Wolfe.

    Parameters
    ----------
    network : Network
    tolls : ndarray, shape (n_links,), optional
        Link tolls ``π_e`` in time units, added to the users' costs (UE only).
    system_optimal : bool
        Solve the system optimum (marginal costs) instead of the UE.
    relative_gap : float
        Stopping tolerance on the relative gap.
    max_iterations : int
    method : {"bfw", "cfw", "fw"}
        Bi-conjugate, conjugate or plain Frank–Wolfe directions.
    graph : ShortestPathGraph, optional
        Reuse the shortest-path structures across calls.
    """
    if method not in ("bfw", "cfw", "fw"):
        raise ValueError(f"method must be 'bfw', 'cfw' or 'fw', got {method!r}")
    tolerance = check_scalar(relative_gap, "relative_gap", low=0.0, low_inclusive=False)
    max_iterations = check_positive_int(max_iterations, "max_iterations")
    tolls = (
        np.zeros(network.n_links) if tolls is None else as_finite_array(tolls, "tolls", (network.n_links,))
    )
    if np.any(tolls < 0):
        raise ValueError(f"tolls must be >= 0, got min {float(tolls.min())!r}")
    if system_optimal and np.any(tolls):
        raise ValueError("tolls are transfers and do not enter the system optimum; pass tolls=None")
    graph = ShortestPathGraph(network) if graph is None else graph
    cost, cost_derivative = link_cost_functions(network, tolls, system_optimal)

    def load(link_cost):
        flow, od_cost = graph.all_or_nothing(link_cost)
        return flow, od_cost, None

    flow, _, gap, iteration = frank_wolfe(
        cost, cost_derivative, load, network.demand, network.n_links, tolerance, max_iterations, method
    )
    travel = network.link_cost(flow)
    return AssignmentResult(
        link_flow=flow,
        link_cost=travel,
        relative_gap=float(gap),
        beckmann=float(network.link_cost_integral(flow).sum()),
        tstt=float(travel @ flow),
        iterations=iteration,
        converged=bool(gap <= tolerance),
    )


def link_cost_functions(network: Network, tolls: np.ndarray, system_optimal: bool):
    """The users' link costs ``t + π`` (or the marginal social costs ``t + x t'``) and their
    derivatives, as functions of the link flows."""

    def cost(flow):
        travel = network.link_cost(flow)
        return travel + flow * network.link_cost_derivative(flow) if system_optimal else travel + tolls

    def cost_derivative(flow):
        first = network.link_cost_derivative(flow)
        if not system_optimal:
            return first
        ratio = flow / network.capacity
        exponent = np.maximum(network.power - 2.0, 0.0)
        second = network.delay * network.power * (network.power - 1.0) * ratio**exponent / network.capacity**2
        return 2.0 * first + flow * second

    return cost, cost_derivative


def frank_wolfe(cost, cost_derivative, load, demand, n_links, tolerance, max_iterations, method="bfw"):
    """(Bi-)conjugate Frank–Wolfe on a separable convex link objective whose gradient is ``cost``.

    ``load(link_cost) -> (link_flow, od_cost, companion)`` is the all-or-nothing oracle;
    ``companion`` (path flows, or ``None``) follows the same convex combinations as the link
    flows. Returns ``(link_flow, companion, relative_gap, iterations)``.
    """
    flow, _, companion = load(cost(np.zeros(n_links)))
    previous = second_previous = None  # (link target, companion target) of the last two steps
    previous_step = 1.0
    gap = np.inf
    iteration = 0
    for iteration in range(1, max_iterations + 1):
        link_cost = cost(flow)
        target, od_cost, companion_target = load(link_cost)
        total = float(link_cost @ flow)
        gap = (total - float(demand @ od_cost)) / total if total > 0 else 0.0
        if gap <= tolerance:
            break
        if method != "fw" and previous is not None:
            weights = _conjugate_weights(
                method, flow, target, previous, second_previous, previous_step, cost_derivative(flow)
            )
            memory = [(target, companion_target), previous, second_previous]
            target = sum(w * point[0] for w, point in zip(weights, memory) if w)
            if companion is not None:
                companion_target = sum(w * point[1] for w, point in zip(weights, memory) if w)
        direction = target - flow
        step = _line_search(cost, cost_derivative, flow, direction)
        flow = flow + step * direction
        if companion is not None:
            companion = companion + step * (companion_target - companion)
        second_previous, previous = previous, (target, companion_target)
        previous_step = step
        if step >= 1.0 - 1e-12:  # the target itself: restart the conjugate memory
            previous = second_previous = None
    else:  # out of iterations: report the gap of the flow returned
        link_cost = cost(flow)
        total = float(link_cost @ flow)
        gap = (total - float(demand @ load(link_cost)[1])) / total if total > 0 else 0.0
    return flow, companion, gap, iteration


def _conjugate_weights(method, flow, target, previous, second_previous, previous_step, hessian):
    """Weights of (all-or-nothing point, last target, second-last target) in the (bi-)conjugate
    target of Mitradjieva & Lindberg (2013): the new direction is conjugate to the previous
    one (two) with respect to ``diag(hessian)``."""
    aon_direction = target - flow
    last = previous[0] - flow
    if method == "cfw" or second_previous is None:
        numerator = last @ (hessian * aon_direction)
        denominator = last @ (hessian * (target - previous[0]))
        weight = numerator / denominator if denominator != 0 else 0.0
        if not 0.0 <= weight < 1.0 - 1e-6:  # no conjugate direction in the hull: a plain FW step
            weight = 0.0
        return 1.0 - weight, weight, 0.0
    two_back = previous_step * previous[0] - flow + (1.0 - previous_step) * second_previous[0]
    denominator_mu = two_back @ (hessian * (second_previous[0] - previous[0]))
    mu = -(two_back @ (hessian * aon_direction)) / denominator_mu if denominator_mu != 0 else 0.0
    mu = max(0.0, float(mu))
    denominator_nu = last @ (hessian * last)
    nu = -(last @ (hessian * aon_direction)) / denominator_nu if denominator_nu != 0 else 0.0
    nu = max(0.0, float(nu + mu * previous_step / (1.0 - previous_step)))
    beta0 = 1.0 / (1.0 + mu + nu)
    return beta0, nu * beta0, mu * beta0


def _line_search(cost, cost_derivative, flow, direction, iterations: int = 60) -> float:
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
