"""Path sets of the path-based routing game: k shortest loopless paths (Yen, 1971).

Each OD pair gets up to ``k`` loopless paths, shortest first by a link weight (free-flow
time by default), found by Yen's algorithm on the link list (so parallel links, as in
Pigou's network, are distinct paths). Zones below ``network.first_thru_node`` are never
passed through. The result is a :class:`PathSet` with the sparse link–path incidence
matrix ``Δ`` (``Δ[e, p] = 1`` if path ``p`` uses link ``e``) that every vectorised
routing computation runs on.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from incentive_envs.routing.network import Network
from incentive_envs.validation import as_finite_array, check_positive_int


@dataclass(frozen=True, eq=False)
class PathSet:
    """Paths grouped by OD pair (OD ``i`` owns paths ``offsets[i]:offsets[i+1]``).

    Attributes
    ----------
    links : tuple of tuple of int
        The links of every path, in travel order.
    od : ndarray of int, shape (n_paths,)
        The OD pair of every path.
    incidence : scipy.sparse.csr_matrix, shape (n_links, n_paths)
        ``Δ``.
    sizes : tuple of int
        Number of paths of every OD pair.
    """

    links: tuple[tuple[int, ...], ...]
    od: np.ndarray
    incidence: sp.csr_matrix
    sizes: tuple[int, ...]

    @property
    def n_paths(self) -> int:
        return len(self.links)

    @classmethod
    def from_paths(cls, network: Network, paths_per_od: list[list[tuple[int, ...]]]) -> PathSet:
        """Build from explicit link sequences per OD pair (validated to connect the pair)."""
        if len(paths_per_od) != network.n_od:
            raise ValueError(f"need paths for {network.n_od} OD pairs, got {len(paths_per_od)}")
        links, od = [], []
        for i, paths in enumerate(paths_per_od):
            if not paths:
                raise ValueError(f"OD pair {i} has no path")
            for path in paths:
                _check_path(network, i, path)
                links.append(tuple(int(e) for e in path))
                od.append(i)
        columns = np.repeat(np.arange(len(links)), [len(path) for path in links])
        rows = np.concatenate([np.asarray(path, dtype=np.int64) for path in links])
        incidence = sp.csr_matrix((np.ones(rows.size), (rows, columns)), shape=(network.n_links, len(links)))
        return cls(tuple(links), np.asarray(od), incidence, tuple(len(paths) for paths in paths_per_od))


def _check_path(network: Network, od_index: int, path) -> None:
    path = [int(e) for e in path]
    if not path or min(path) < 0 or max(path) >= network.n_links:
        raise ValueError(f"path {path} of OD pair {od_index} has unknown links")
    node = int(network.origins[od_index])
    visited = {node}
    for e in path:
        if network.init_node[e] != node:
            raise ValueError(f"path {path} of OD pair {od_index} is not connected at link {e}")
        node = int(network.term_node[e])
        if node in visited:
            raise ValueError(f"path {path} of OD pair {od_index} has a loop at node {node}")
        visited.add(node)
    if node != network.destinations[od_index]:
        raise ValueError(f"path {path} of OD pair {od_index} does not end at its destination")


def k_shortest_paths(network: Network, k: int = 3, weight: np.ndarray | None = None) -> PathSet:
    """Up to ``k`` shortest loopless paths per OD pair by Yen's algorithm.

    Parameters
    ----------
    network : Network
    k : int
        Paths per OD pair (fewer where fewer exist).
    weight : ndarray, shape (n_links,), optional
        Non-negative link lengths; default the free-flow times. Ties are broken by the
        lexicographic order of the link sequences, so the result is deterministic.
    """
    k = check_positive_int(k, "k")
    weight = (
        network.free_flow_time if weight is None else as_finite_array(weight, "weight", (network.n_links,))
    )
    if np.any(weight < 0):
        raise ValueError("weight must be non-negative")
    outgoing: list[list[tuple[int, int, float]]] = [[] for _ in range(network.n_nodes)]
    for e in range(network.n_links):
        outgoing[int(network.init_node[e])].append((e, int(network.term_node[e]), float(weight[e])))
    through = network.first_thru_node
    paths_per_od = []
    for i in range(network.n_od):
        origin, destination = int(network.origins[i]), int(network.destinations[i])
        paths = _yen(outgoing, weight, origin, destination, k, through)
        if not paths:
            raise ValueError(f"OD pair {i} ({origin} -> {destination}) is not connected")
        paths_per_od.append(paths)
    return PathSet.from_paths(network, paths_per_od)


def _dijkstra(outgoing, source, target, banned_links, banned_nodes, through):
    """Shortest path from ``source`` to ``target`` avoiding banned links/nodes (and not
    passing through zones below ``through``); returns ``(cost, links)`` or ``None``."""
    best = {source: 0.0}
    heap = [(0.0, (), source)]
    while heap:
        cost, links, node = heapq.heappop(heap)
        if node == target:
            return cost, links
        if cost > best.get(node, np.inf) or (node < through and node != source):
            continue
        for e, head, length in outgoing[node]:
            if e in banned_links or head in banned_nodes:
                continue
            candidate = cost + length
            if candidate < best.get(head, np.inf):
                best[head] = candidate
                heapq.heappush(heap, (candidate, (*links, e), head))
    return None


def _yen(outgoing, weight, origin, destination, k, through):
    first = _dijkstra(outgoing, origin, destination, set(), set(), through)
    if first is None:
        return []
    accepted = [first[1]]
    candidates: list[tuple[float, tuple[int, ...]]] = []
    seen = {first[1]}
    node_of = {}
    for _, head_links in enumerate(outgoing):
        for e, head, _length in head_links:
            node_of[e] = head
    while len(accepted) < k:
        previous = accepted[-1]
        nodes = [origin] + [node_of[e] for e in previous]
        for j in range(len(previous)):
            root = previous[:j]
            banned_links = {path[j] for path in accepted if path[:j] == root and len(path) > j}
            spur = _dijkstra(outgoing, nodes[j], destination, banned_links, set(nodes[:j]), through)
            if spur is None:
                continue
            path = root + spur[1]
            if path not in seen:
                seen.add(path)
                heapq.heappush(candidates, (float(weight[list(path)].sum()), path))
        if not candidates:
            break
        accepted.append(heapq.heappop(candidates)[1])
    return accepted
