"""Road networks: links with BPR costs and an origin–destination demand table (SPEC G2).

A :class:`Network` holds 0-based link endpoints, the cost parameters of every link and the
OD demand as three aligned arrays. The cost of link ``e`` at flow ``x_e`` is

    c_e(x_e) = t_e(x_e) + k_e,      t_e(x_e) = fft_e (1 + b_e (x_e / cap_e)^power_e)
                                             = fft_e + delay_e (x_e / cap_e)^power_e,

the BPR travel time of the U.S. Bureau of Public Roads (1964), *Traffic Assignment Manual*,
stored in the second form (``delay_e = fft_e b_e``, the extra minutes at capacity) so that
textbook costs without a constant term, such as ``10 x`` in Braess's network, are exact,
plus a constant **fixed cost** ``k_e >= 0`` in time units: the flow-independent part of a
generalised cost, such as ``toll_weight · toll_e + distance_weight · length_e`` in the
*Transportation Networks for Research* collection (Chicago Sketch's published optimum uses
0.02 min/cent and 0.04 min/mile). Links with ``power_e = 0`` or ``delay_e = 0`` have the
constant cost ``fft_e + delay_e [power_e = 0] + k_e`` (centroid connectors).

What the costs mean downstream:

* users minimise the generalised cost ``c`` (:meth:`Network.link_cost`);
* the Beckmann objective ``Σ_e ∫_0^{x_e} c_e`` includes the fixed costs
  (:meth:`Network.link_cost_integral`; this is the collection's published objective);
* the **total system travel time** ``TSTT = Σ_e x_e t_e(x_e)`` is travel time only
  (:meth:`Network.link_travel_time`), while the **total cost** ``Σ_e x_e c_e(x_e)`` adds the
  fixed costs and is what the system optimum minimises (they coincide without fixed costs).
  Tolls a planner sets are transfers: they enter the users' costs but neither total.

Sources: :func:`pigou`, :func:`braess`, :func:`grid` written here; the TNTP files and the
collection's networks by name in :mod:`incentive_envs.routing.tntp`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from incentive_envs.core import frozen
from incentive_envs.validation import (
    as_finite_array,
    as_generator,
    check_bool,
    check_int,
    check_positive_int,
    check_scalar,
)

MAX_NODES = 10_000_000
"""Largest node count a :class:`Network` accepts (the solvers allocate arrays per node)."""


@dataclass(frozen=True, eq=False)
class Network:
    """A directed road network with BPR link costs and OD demand (see the module docstring).

    Parameters
    ----------
    n_nodes : int
        Nodes are ``0 .. n_nodes − 1`` (TNTP node ``k`` is node ``k − 1``); at most
        :data:`MAX_NODES`.
    init_node, term_node : ndarray of int, shape (n_links,)
        Tail and head of each link.
    free_flow_time, capacity, delay, power : ndarray, shape (n_links,)
        ``t_e(x) = fft_e + delay_e (x / cap_e)^power_e`` with ``fft >= 0``, ``cap > 0``,
        ``delay >= 0`` (``= fft · b`` for TNTP's BPR ``b``) and ``power >= 0``; where
        ``delay > 0`` the power is 0 (a constant link) or at least 1 (convex).
    origins, destinations : ndarray of int, shape (n_od,)
        Node of each OD pair (pairs are distinct, origin ≠ destination).
    demand : ndarray, shape (n_od,)
        Positive demand of each OD pair.
    first_thru_node : int
        0-based: nodes below it are zones that paths may start or end at but not pass through
        (TNTP ``<FIRST THRU NODE>`` minus one). 0 means every node is a through node.
    name : str
    fixed_cost : ndarray, shape (n_links,), optional
        The constant ``k_e >= 0`` added to every link cost (default 0).
    length, toll : ndarray, shape (n_links,), optional
        The link lengths (``>= 0``) and tolls of the TNTP file, kept as data (default 0);
        they enter the costs only through ``fixed_cost``.
    """

    n_nodes: int
    init_node: np.ndarray
    term_node: np.ndarray
    free_flow_time: np.ndarray
    capacity: np.ndarray
    delay: np.ndarray
    power: np.ndarray
    origins: np.ndarray
    destinations: np.ndarray
    demand: np.ndarray
    first_thru_node: int = 0
    name: str = "network"
    fixed_cost: np.ndarray | None = None
    length: np.ndarray | None = None
    toll: np.ndarray | None = None

    def __post_init__(self) -> None:
        n_nodes = check_positive_int(self.n_nodes, "n_nodes", maximum=MAX_NODES)
        if not isinstance(self.name, str):
            raise ValueError(f"name must be a string, got {self.name!r}")
        init_node = _node_array(self.init_node, "init_node", n_nodes)
        n_links = init_node.shape[0]
        if n_links == 0:
            raise ValueError("a network needs at least one link")
        term_node = _node_array(self.term_node, "term_node", n_nodes, (n_links,))
        loops = np.flatnonzero(init_node == term_node)
        if loops.size:
            raise ValueError(f"link {int(loops[0])} is a self-loop at node {int(init_node[loops[0]])}")
        lower_bounds = {
            "free_flow_time": (0.0, True),
            "capacity": (0.0, False),
            "delay": (0.0, True),
            "power": (0.0, True),
            "fixed_cost": (0.0, True),
            "length": (0.0, True),
            "toll": (-np.inf, True),
        }
        values = {}
        for name, (low, inclusive) in lower_bounds.items():
            given = getattr(self, name)
            array = np.zeros(n_links) if given is None else as_finite_array(given, name, (n_links,))
            bad = np.flatnonzero(array < low if inclusive else array <= low)
            if bad.size:
                i = int(bad[0])
                relation = ">=" if inclusive else ">"
                raise ValueError(f"{name}[{i}] must be {relation} {low}, got {float(array[i])!r}")
            values[name] = array
        concave = np.flatnonzero((values["delay"] > 0) & (values["power"] > 0) & (values["power"] < 1))
        if concave.size:
            i = int(concave[0])
            raise ValueError(
                f"power[{i}] must be 0 or >= 1 where delay > 0, got {float(values['power'][i])!r}"
            )
        for name, array in values.items():
            object.__setattr__(self, name, frozen(array))
        origins = _node_array(self.origins, "origins", n_nodes)
        n_od = origins.shape[0]
        if n_od == 0:
            raise ValueError("a network needs at least one OD pair with positive demand")
        destinations = _node_array(self.destinations, "destinations", n_nodes, (n_od,))
        demand = as_finite_array(self.demand, "demand", (n_od,))
        if np.any(demand <= 0):
            i = int(np.flatnonzero(demand <= 0)[0])
            raise ValueError(f"demand[{i}] must be > 0, got {float(demand[i])!r}")
        if np.any(origins == destinations):
            i = int(np.flatnonzero(origins == destinations)[0])
            raise ValueError(f"OD pair {i} has origin == destination == {int(origins[i])}")
        if np.unique(origins * n_nodes + destinations).size != n_od:
            raise ValueError("OD pairs must be distinct")
        first_thru_node = check_int(self.first_thru_node, "first_thru_node", low=0, high=n_nodes)
        for name, array in [
            ("init_node", init_node),
            ("term_node", term_node),
            ("origins", origins),
            ("destinations", destinations),
        ]:
            array.setflags(write=False)
            object.__setattr__(self, name, array)
        object.__setattr__(self, "demand", frozen(demand))
        object.__setattr__(self, "first_thru_node", first_thru_node)
        # The evaluation form c = constant + coefficient (x / cap)^exponent with exponent >= 1
        # wherever coefficient > 0, so that derivatives stay finite at zero flow.
        power = values["power"]
        constant = (
            values["free_flow_time"] + values["fixed_cost"] + np.where(power == 0, values["delay"], 0.0)
        )
        coefficient = np.where(power > 0, values["delay"], 0.0)
        object.__setattr__(self, "_constant", frozen(constant))
        object.__setattr__(self, "_coefficient", frozen(coefficient))
        object.__setattr__(self, "_exponent", frozen(np.where(coefficient > 0, power, 1.0)))

    @property
    def n_links(self) -> int:
        return int(self.init_node.shape[0])

    @property
    def n_od(self) -> int:
        return int(self.origins.shape[0])

    @property
    def total_demand(self) -> float:
        return float(self.demand.sum())

    def check_flow(self, flow, name: str = "flow") -> np.ndarray:
        """``flow`` as a float64 array of shape ``(n_links,)`` with finite entries ``>= 0``, or
        ``ValueError`` naming ``name`` (what every cost function below checks first)."""
        flow = as_finite_array(flow, name, (self.n_links,))
        if flow.size and flow.min() < 0:
            i = int(np.argmin(flow))
            raise ValueError(f"{name}[{i}] = {float(flow[i])!r} is negative; link flows must be >= 0")
        return flow

    def link_cost(self, flow: np.ndarray) -> np.ndarray:
        """Generalised link costs ``c_e(x_e) = t_e(x_e) + k_e`` (what users minimise)."""
        flow = self.check_flow(flow)
        return self._constant + self._coefficient * (flow / self.capacity) ** self._exponent

    def link_travel_time(self, flow: np.ndarray) -> np.ndarray:
        """BPR travel times ``t_e(x_e)`` (the costs without the fixed costs)."""
        return self.link_cost(flow) - self.fixed_cost

    def link_cost_derivative(self, flow: np.ndarray) -> np.ndarray:
        """``c'_e(x_e) = delay_e power_e (x_e / cap_e)^{power_e − 1} / cap_e`` (0 on constant links)."""
        flow = self.check_flow(flow)
        return (
            self._coefficient
            * self._exponent
            * (flow / self.capacity) ** (self._exponent - 1.0)
            / self.capacity
        )

    def link_cost_integral(self, flow: np.ndarray) -> np.ndarray:
        """``∫_0^{x_e} c_e(s) ds`` (the terms of the Beckmann objective, fixed costs included)."""
        flow = self.check_flow(flow)
        return flow * (
            self._constant
            + self._coefficient * (flow / self.capacity) ** self._exponent / (self._exponent + 1.0)
        )

    def marginal_cost(self, flow: np.ndarray) -> np.ndarray:
        """Marginal social costs ``d(x_e c_e)/dx_e = c_e + x_e c'_e = k_e + fft_e + delay_e (1 + p_e)
        (x_e/cap_e)^{p_e}``, the link costs of the system optimum."""
        flow = self.check_flow(flow)
        return (
            self._constant
            + self._coefficient * (1.0 + self._exponent) * (flow / self.capacity) ** self._exponent
        )

    def marginal_cost_derivative(self, flow: np.ndarray) -> np.ndarray:
        """``d²(x_e c_e)/dx_e² = 2 c'_e + x_e c''_e = delay_e p_e (1 + p_e) (x_e/cap_e)^{p_e − 1} / cap_e``,
        finite for every ``p_e >= 1`` (the two terms are not evaluated apart: ``c''`` alone is
        unbounded at zero flow when ``1 < p_e < 2``)."""
        return (1.0 + self._exponent) * self.link_cost_derivative(flow)

    def demand_matrix(self) -> np.ndarray:
        """Dense ``(n_nodes, n_nodes)`` demand matrix."""
        matrix = np.zeros((self.n_nodes, self.n_nodes))
        matrix[self.origins, self.destinations] = self.demand
        return matrix

    def __repr__(self) -> str:
        return (
            f"Network({self.name!r}, nodes={self.n_nodes}, links={self.n_links}, "
            f"od_pairs={self.n_od}, demand={self.total_demand:g})"
        )


def _node_array(values, name: str, n_nodes: int, shape: tuple[int, ...] | None = None) -> np.ndarray:
    array = np.array(values)
    if array.ndim != 1 or (shape is not None and array.shape != shape):
        raise ValueError(
            f"{name} must be 1-D{'' if shape is None else f' of shape {shape}'}, got {array.shape}"
        )
    if array.size and not np.issubdtype(array.dtype, np.integer):
        if not np.issubdtype(array.dtype, np.number) or np.any(array != np.round(array)):
            raise ValueError(f"{name} must hold integer node indices")
    array = array.astype(np.int64)
    bad = np.flatnonzero((array < 0) | (array >= n_nodes))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{name}[{i}] = {int(array[i])} is not a node in [0, {n_nodes})")
    return array


def network_from_links(
    n_nodes: int,
    links,
    demand: dict[tuple[int, int], float],
    name: str,
    first_thru_node: int = 0,
) -> Network:
    """Build a :class:`Network` from rows ``(init, term, fft, capacity, delay, power)`` and a
    ``{(origin, destination): demand}`` mapping (0-based nodes; zero demands are dropped)."""
    columns = as_finite_array(links, "links")
    if columns.ndim != 2 or columns.shape[1] != 6:
        raise ValueError(f"links must be rows of 6 numbers, got shape {columns.shape}")
    pairs = [(pair, volume) for pair, volume in demand.items() if volume != 0]
    return Network(
        n_nodes=n_nodes,
        init_node=columns[:, 0],
        term_node=columns[:, 1],
        free_flow_time=columns[:, 2],
        capacity=columns[:, 3],
        delay=columns[:, 4],
        power=columns[:, 5],
        origins=np.array([pair[0] for pair, _ in pairs], dtype=np.int64),
        destinations=np.array([pair[1] for pair, _ in pairs], dtype=np.int64),
        demand=np.array([volume for _, volume in pairs], dtype=np.float64),
        first_thru_node=first_thru_node,
        name=name,
    )


# -- small networks ---------------------------------------------------------------------


def pigou(demand: float = 1.0, power: float = 1.0) -> Network:
    """Pigou's example: two parallel links from node 0 to node 1, ``t_1(x) = 1`` and
    ``t_2(x) = x^power``.

    Closed forms (demand 1): the user equilibrium puts everyone on link 2 (TSTT 1); the
    system optimum puts ``(1 + power)^{−1/power}`` on link 2 (TSTT 3/4 for ``power = 1``).
    """
    demand = check_scalar(demand, "demand", low=0.0, low_inclusive=False)
    power = check_scalar(power, "power", low=1.0)
    return network_from_links(
        2, [(0, 1, 1.0, 1.0, 0.0, 1.0), (0, 1, 0.0, 1.0, 1.0, power)], {(0, 1): demand}, "pigou"
    )


BRAESS_BRIDGE_LINK = 4
"""Index of the bridge ``a → b`` in :func:`braess`."""


def braess(demand: float = 6.0, bridge: bool = True) -> Network:
    """Braess's network: ``s=0``, ``a=1``, ``b=2``, ``t=3`` with link costs

    ``s→a: 10x``, ``a→t: x + 50``, ``s→b: x + 50``, ``b→t: 10x`` and the bridge ``a→b: x + 10``.

    With demand 6 (the textbook instance) the user equilibrium routes 2 on each of the three
    paths at cost 92 per traveller (TSTT 552); without the bridge it routes 3 on each of the
    two paths at cost 83 (TSTT 498) — Braess's paradox.
    """
    demand = check_scalar(demand, "demand", low=0.0, low_inclusive=False)
    bridge = check_bool(bridge, "bridge")
    links = [
        (0, 1, 0.0, 1.0, 10.0, 1.0),
        (1, 3, 50.0, 1.0, 1.0, 1.0),
        (0, 2, 50.0, 1.0, 1.0, 1.0),
        (2, 3, 0.0, 1.0, 10.0, 1.0),
    ]
    if bridge:
        links.append((1, 2, 10.0, 1.0, 1.0, 1.0))
    return network_from_links(4, links, {(0, 3): demand}, "braess" if bridge else "braess_without_bridge")


MAX_GRID_SIDE = 1000
"""Largest accepted number of rows or columns of :func:`grid` (a million nodes)."""


def grid(
    rows: int = 3,
    cols: int = 3,
    seed: int | np.random.Generator = 0,
    demand_scale: float = 1.0,
) -> Network:
    """A ``rows × cols`` grid with two-way links between neighbours, random BPR parameters
    (``fft ~ U[1, 3]``, ``cap ~ U[0.5, 1.5]``, ``b = 0.15``, ``power = 4``) and demand
    ``demand_scale · U[0.5, 1.5]`` between the four corners (seeded)."""
    rows, cols = (
        check_positive_int(rows, "rows", MAX_GRID_SIDE),
        check_positive_int(cols, "cols", MAX_GRID_SIDE),
    )
    demand_scale = check_scalar(demand_scale, "demand_scale", low=0.0, low_inclusive=False)
    if rows * cols < 2:
        raise ValueError(f"a grid needs at least two nodes, got rows={rows}, cols={cols}")
    rng = as_generator(seed)
    node = np.arange(rows * cols).reshape(rows, cols)
    pairs = np.concatenate(
        [
            np.stack([node[:, :-1].ravel(), node[:, 1:].ravel()], 1),
            np.stack([node[:-1].ravel(), node[1:].ravel()], 1),
        ]
    )
    pairs = np.concatenate([pairs, pairs[:, ::-1]])
    fft = rng.uniform(1.0, 3.0, len(pairs))
    links = np.column_stack(
        [pairs, fft, rng.uniform(0.5, 1.5, len(pairs)), 0.15 * fft, np.full(len(pairs), 4.0)]
    )
    corners = sorted({int(node[0, 0]), int(node[0, -1]), int(node[-1, 0]), int(node[-1, -1])})
    demand = {(o, d): demand_scale * float(rng.uniform(0.5, 1.5)) for o in corners for d in corners if o != d}
    return network_from_links(rows * cols, links, demand, f"grid{rows}x{cols}")
