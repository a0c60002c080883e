"""Road networks: links with BPR costs and an origin–destination demand table (SPEC G2).

A :class:`Network` holds 0-based link endpoints, the BPR parameters of every link,

    t_e(x_e) = fft_e (1 + b_e (x_e / cap_e)^power_e) = fft_e + delay_e (x_e / cap_e)^power_e,

stored in the second form (``delay_e = fft_e b_e``, the extra minutes at capacity) so that
textbook costs without a constant term, such as ``10 x`` in Braess's network, are exact,

and the OD demand as three aligned arrays. Sources:

* :func:`read_tntp` — the TNTP format of the *Transportation Networks for Research*
  collection (``*_net.tntp`` and ``*_trips.tntp``), with :func:`write_tntp` for round trips;
* :func:`pigou`, :func:`braess`, :func:`grid` — small networks written here;
* :func:`sioux_falls` — the Sioux Falls network, read offline from the ``aequilibrae``
  wheel (``pip install incentive-envs[traffic]``) or downloaded once from the TNTP
  repository into a user cache with a SHA-256 check (:func:`download_tntp`).
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from incentive_envs.core import frozen
from incentive_envs.io import write_bytes_atomic
from incentive_envs.validation import as_finite_array, as_generator, check_positive_int


@dataclass(frozen=True, eq=False)
class Network:
    """A directed road network with BPR link costs and OD demand.

    Parameters
    ----------
    n_nodes : int
        Nodes are ``0 .. n_nodes − 1`` (TNTP node ``k`` is node ``k − 1``).
    init_node, term_node : ndarray of int, shape (n_links,)
        Tail and head of each link.
    free_flow_time, capacity, delay, power : ndarray, shape (n_links,)
        ``t_e(x) = fft_e + delay_e (x / cap_e)^power_e`` with ``fft >= 0``, ``cap > 0``,
        ``delay >= 0`` (``= fft · b`` for TNTP's BPR ``b``) and ``power >= 1``.
    origins, destinations : ndarray of int, shape (n_od,)
        Node of each OD pair (pairs are distinct, origin ≠ destination).
    demand : ndarray, shape (n_od,)
        Positive demand of each OD pair.
    first_thru_node : int
        0-based: nodes below it are zones that paths may start or end at but not pass through
        (TNTP ``<FIRST THRU NODE>`` minus one). 0 means every node is a through node.
    name : str
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

    def __post_init__(self) -> None:
        n_nodes = check_positive_int(self.n_nodes, "n_nodes")
        init_node = _node_array(self.init_node, "init_node", n_nodes)
        n_links = init_node.shape[0]
        if n_links == 0:
            raise ValueError("a network needs at least one link")
        term_node = _node_array(self.term_node, "term_node", n_nodes, (n_links,))
        loops = np.flatnonzero(init_node == term_node)
        if loops.size:
            raise ValueError(f"link {int(loops[0])} is a self-loop at node {int(init_node[loops[0]])}")
        fields = {
            "free_flow_time": (0.0, True),
            "capacity": (0.0, False),
            "delay": (0.0, True),
            "power": (1.0, True),
        }
        for name, (low, inclusive) in fields.items():
            values = as_finite_array(getattr(self, name), name, (n_links,))
            bad = np.flatnonzero(values < low if inclusive else values <= low)
            if bad.size:
                i = int(bad[0])
                relation = ">=" if inclusive else ">"
                raise ValueError(f"{name}[{i}] must be {relation} {low}, got {float(values[i])!r}")
            object.__setattr__(self, name, frozen(values))
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
        if not 0 <= int(self.first_thru_node) <= n_nodes:
            raise ValueError(f"first_thru_node must be in [0, {n_nodes}], got {self.first_thru_node!r}")
        for name, array in [
            ("init_node", init_node),
            ("term_node", term_node),
            ("origins", origins),
            ("destinations", destinations),
        ]:
            array.setflags(write=False)
            object.__setattr__(self, name, array)
        object.__setattr__(self, "demand", frozen(demand))
        object.__setattr__(self, "first_thru_node", int(self.first_thru_node))

    @property
    def n_links(self) -> int:
        return int(self.init_node.shape[0])

    @property
    def n_od(self) -> int:
        return int(self.origins.shape[0])

    @property
    def total_demand(self) -> float:
        return float(self.demand.sum())

    def link_cost(self, flow: np.ndarray) -> np.ndarray:
        """BPR travel times ``t_e(x_e)``."""
        return self.free_flow_time + self.delay * (flow / self.capacity) ** self.power

    def link_cost_derivative(self, flow: np.ndarray) -> np.ndarray:
        """``t'_e(x_e) = delay_e power_e (x_e / cap_e)^{power_e − 1} / cap_e``."""
        return self.delay * self.power * (flow / self.capacity) ** (self.power - 1.0) / self.capacity

    def link_cost_integral(self, flow: np.ndarray) -> np.ndarray:
        """``∫_0^{x_e} t_e(s) ds`` (the terms of the Beckmann objective)."""
        return flow * (
            self.free_flow_time + self.delay * (flow / self.capacity) ** self.power / (self.power + 1.0)
        )

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
    links = [
        (0, 1, 0.0, 1.0, 10.0, 1.0),
        (1, 3, 50.0, 1.0, 1.0, 1.0),
        (0, 2, 50.0, 1.0, 1.0, 1.0),
        (2, 3, 0.0, 1.0, 10.0, 1.0),
    ]
    if bridge:
        links.append((1, 2, 10.0, 1.0, 1.0, 1.0))
    return network_from_links(4, links, {(0, 3): demand}, "braess" if bridge else "braess_without_bridge")


def grid(
    rows: int = 3,
    cols: int = 3,
    seed: int | np.random.Generator = 0,
    demand_scale: float = 1.0,
) -> Network:
    """A ``rows × cols`` grid with two-way links between neighbours, random BPR parameters
    (``fft ~ U[1, 3]``, ``cap ~ U[0.5, 1.5]``, ``b = 0.15``, ``power = 4``) and demand
    ``demand_scale · U[0.5, 1.5]`` between the four corners (seeded)."""
    rows, cols = check_positive_int(rows, "rows"), check_positive_int(cols, "cols")
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


# -- TNTP files -------------------------------------------------------------------------

_METADATA = re.compile(r"^\s*<([^>]+)>\s*(.*?)\s*$")
_NET_COLUMNS = ("init_node", "term_node", "capacity", "length", "free_flow_time", "b", "power")
_REQUIRED_COLUMNS = ("init_node", "term_node", "capacity", "free_flow_time", "b", "power")


def _read_metadata(lines: list[str], path: Path) -> tuple[dict[str, str], int]:
    metadata = {}
    for number, line in enumerate(lines):
        match = _METADATA.match(line)
        if match is None:
            continue
        key = match.group(1).strip().upper()
        if key == "END OF METADATA":
            return metadata, number + 1
        metadata[key] = match.group(2)
    raise ValueError(f"{path}: no <END OF METADATA> line; is this a TNTP file?")


def _metadata_int(metadata: dict[str, str], key: str, path: Path, default: int | None = None) -> int:
    if key not in metadata:
        if default is None:
            raise ValueError(f"{path}: missing metadata <{key}>")
        return default
    try:
        return int(float(metadata[key]))
    except ValueError:
        raise ValueError(f"{path}: metadata <{key}> is not a number: {metadata[key]!r}") from None


def _normalise_column(name: str) -> str:
    return re.sub(r"[^a-z]", "", name.lower())


def read_tntp(net_path: str | os.PathLike, trips_path: str | os.PathLike, name: str | None = None) -> Network:
    """Read a TNTP network file and trips file into a :class:`Network`.

    The link table is read by its ``~`` header when it has one (column names are matched
    ignoring case, spaces and underscores), else in TNTP's standard column order
    ``init_node term_node capacity length free_flow_time b power ...``. Raises
    ``ValueError`` naming the file and line on missing metadata or columns, malformed
    numbers, unknown nodes, non-positive capacities, link counts or totals that disagree
    with the metadata.
    """
    net_path, trips_path = Path(net_path), Path(trips_path)
    lines = net_path.read_text().splitlines()
    metadata, start = _read_metadata(lines, net_path)
    n_nodes = _metadata_int(metadata, "NUMBER OF NODES", net_path)
    n_links_expected = _metadata_int(metadata, "NUMBER OF LINKS", net_path)
    first_thru = _metadata_int(metadata, "FIRST THRU NODE", net_path, default=1)
    columns = {name: position for position, name in enumerate(_NET_COLUMNS)}
    rows = []
    for number in range(start, len(lines)):
        text = lines[number].strip()
        if not text:
            continue
        if text.startswith("~"):
            header = [_normalise_column(field) for field in text.lstrip("~").replace(";", " ").split("\t")]
            header = [field for field in header if field]
            if len(header) <= 1:
                header = [_normalise_column(field) for field in text.lstrip("~").replace(";", " ").split()]
            positions = {field: position for position, field in enumerate(header)}
            columns = {}
            for required in _REQUIRED_COLUMNS:
                key = _normalise_column(required)
                if key not in positions:
                    raise ValueError(f"{net_path}:{number + 1}: header has no column {required!r}: {text!r}")
                columns[required] = positions[key]
            continue
        fields = text.rstrip(";").split()
        needed = max(columns[required] for required in _REQUIRED_COLUMNS) + 1
        if len(fields) < needed:
            raise ValueError(
                f"{net_path}:{number + 1}: expected at least {needed} columns, got {len(fields)}: {text!r}"
            )
        try:
            row = [float(fields[columns[required]]) for required in _REQUIRED_COLUMNS]
        except ValueError:
            raise ValueError(f"{net_path}:{number + 1}: malformed number in {text!r}") from None
        if not all(np.isfinite(row)):
            raise ValueError(f"{net_path}:{number + 1}: non-finite number in {text!r}")
        for value, what in ((row[0], "init node"), (row[1], "term node")):
            if value != int(value) or not 1 <= value <= n_nodes:
                raise ValueError(
                    f"{net_path}:{number + 1}: unknown {what} {value:g} (nodes are 1..{n_nodes})"
                )
        if row[2] <= 0:
            raise ValueError(f"{net_path}:{number + 1}: capacity must be > 0, got {row[2]:g}")
        rows.append((number, row))
    if len(rows) != n_links_expected:
        raise ValueError(
            f"{net_path}: <NUMBER OF LINKS> is {n_links_expected} but {len(rows)} links were read"
        )
    if not rows:
        raise ValueError(f"{net_path}: no links")
    table = np.array([row for _, row in rows])
    init, term, capacity, fft, b, power = table.T
    origins, destinations, demand = _read_trips(trips_path, n_nodes)
    try:
        return Network(
            n_nodes=n_nodes,
            init_node=init.astype(np.int64) - 1,
            term_node=term.astype(np.int64) - 1,
            free_flow_time=fft,
            capacity=capacity,
            delay=fft * b,
            power=power,
            origins=origins,
            destinations=destinations,
            demand=demand,
            first_thru_node=first_thru - 1 if first_thru > 1 else 0,
            name=name or net_path.name.removesuffix(".tntp").removesuffix("_net"),
        )
    except ValueError as error:
        raise ValueError(f"{net_path}: {error}") from None


def _read_trips(path: Path, n_nodes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lines = path.read_text().splitlines()
    metadata, start = _read_metadata(lines, path)
    n_zones = _metadata_int(metadata, "NUMBER OF ZONES", path)
    if n_zones > n_nodes:
        raise ValueError(f"{path}: {n_zones} zones but the network has only {n_nodes} nodes")
    origin = None
    entries: dict[tuple[int, int], float] = {}
    for number in range(start, len(lines)):
        text = lines[number].strip()
        if not text or text.startswith("~"):
            continue
        if text.lower().startswith("origin"):
            parts = text.split()
            if len(parts) != 2 or not parts[1].isdigit() or not 1 <= int(parts[1]) <= n_zones:
                raise ValueError(f"{path}:{number + 1}: bad origin line {text!r} (zones are 1..{n_zones})")
            origin = int(parts[1]) - 1
            continue
        if origin is None:
            raise ValueError(f"{path}:{number + 1}: demand entries before any 'Origin' line: {text!r}")
        for entry in filter(None, (item.strip() for item in text.split(";"))):
            destination, sep, volume = entry.partition(":")
            try:
                destination_index, value = int(destination), float(volume)
            except ValueError:
                raise ValueError(f"{path}:{number + 1}: malformed entry {entry!r}") from None
            if not sep or not np.isfinite(value) or value < 0:
                raise ValueError(f"{path}:{number + 1}: malformed entry {entry!r}")
            if not 1 <= destination_index <= n_zones:
                raise ValueError(f"{path}:{number + 1}: unknown destination zone {destination_index}")
            if value > 0 and destination_index - 1 != origin:
                key = (origin, destination_index - 1)
                entries[key] = entries.get(key, 0.0) + value
    if not entries:
        raise ValueError(f"{path}: no positive demand")
    keys = sorted(entries)
    demand = np.array([entries[key] for key in keys])
    if "TOTAL OD FLOW" in metadata:
        try:
            declared = float(metadata["TOTAL OD FLOW"])
        except ValueError:
            raise ValueError(f"{path}: <TOTAL OD FLOW> is not a number") from None
        if abs(declared - demand.sum()) > 1e-6 * max(declared, 1.0):
            raise ValueError(
                f"{path}: <TOTAL OD FLOW> is {declared:g} but the entries sum to {demand.sum():g}"
            )
    pairs = np.array(keys, dtype=np.int64)
    return pairs[:, 0], pairs[:, 1], demand


def write_tntp(network: Network, net_path: str | os.PathLike, trips_path: str | os.PathLike) -> None:
    """Write ``network`` as TNTP network and trips files (inverse of :func:`read_tntp`).

    Raises ``ValueError`` for links TNTP's BPR form cannot express (``fft = 0`` with
    ``delay > 0``) and for demand between nodes that are not zones.
    """
    no_constant = (network.free_flow_time == 0) & (network.delay > 0)
    if no_constant.any():
        raise ValueError(
            f"link {int(np.flatnonzero(no_constant)[0])} has fft = 0 and delay > 0, which TNTP's "
            "fft (1 + b (x/cap)^p) cannot express"
        )
    n_zones = int(max(network.origins.max(), network.destinations.max())) + 1
    if network.first_thru_node and n_zones > network.first_thru_node:
        raise ValueError("demand involves nodes at or above first_thru_node, which are not zones")
    n_zones = max(n_zones, network.first_thru_node)
    b = np.divide(
        network.delay, network.free_flow_time, out=np.zeros(network.n_links), where=network.free_flow_time > 0
    )
    net_lines = [
        f"<NUMBER OF ZONES> {n_zones}",
        f"<NUMBER OF NODES> {network.n_nodes}",
        f"<FIRST THRU NODE> {network.first_thru_node + 1}",
        f"<NUMBER OF LINKS> {network.n_links}",
        "<END OF METADATA>",
        "",
        "~\tinit_node\tterm_node\tcapacity\tlength\tfree_flow_time\tb\tpower\tspeed\ttoll\tlink_type\t;",
    ]
    for e in range(network.n_links):
        net_lines.append(
            f"\t{network.init_node[e] + 1}\t{network.term_node[e] + 1}\t{float(network.capacity[e])!r}\t0"
            f"\t{float(network.free_flow_time[e])!r}\t{float(b[e])!r}\t{float(network.power[e])!r}\t0\t0\t1\t;"
        )
    trips_lines = [
        f"<NUMBER OF ZONES> {n_zones}",
        f"<TOTAL OD FLOW> {network.total_demand!r}",
        "<END OF METADATA>",
        "",
    ]
    for origin in np.unique(network.origins):
        trips_lines.append(f"Origin \t{origin + 1}")
        selected = np.flatnonzero(network.origins == origin)
        trips_lines.append(
            " ".join(f"{network.destinations[k] + 1} : {float(network.demand[k])!r};" for k in selected)
        )
    for path, lines in ((net_path, net_lines), (trips_path, trips_lines)):
        write_bytes_atomic(path, ("\n".join(lines) + "\n").encode())


def content_digest(network: Network) -> str:
    """SHA-256 of the network's numbers (links and demand, each printed to 10 significant
    digits), so a download is checked by what it means, not by its whitespace (and not by
    the last-bit differences of TNTP's ``b = delay / fft`` round trip)."""
    digest = hashlib.sha256()
    for array in (
        network.init_node,
        network.term_node,
        network.free_flow_time,
        network.capacity,
        network.delay,
        network.power,
        network.origins,
        network.destinations,
        network.demand,
    ):
        digest.update(" ".join(f"{value:.10g}" for value in np.asarray(array, dtype=float)).encode())
        digest.update(b"|")
    return digest.hexdigest()


# -- Sioux Falls ------------------------------------------------------------------------

SIOUX_FALLS_URL = "https://raw.githubusercontent.com/bstabler/TransportationNetworks/master/SiouxFalls/"
SIOUX_FALLS_FILES = ("SiouxFalls_net.tntp", "SiouxFalls_trips.tntp")
SIOUX_FALLS_DIGEST = "d4ac9c2683f8db0e855d4ba60a8b29c5837601aa5288663f1a5549ba164e189e"
""":func:`content_digest` of Sioux Falls (24 nodes, 76 links, 528 OD pairs, demand 360,600)."""

SIOUX_FALLS_TOLLED_LINKS = (
    np.array([11, 35, 32, 68, 46, 21, 65, 52, 71, 74, 33, 64, 69, 14, 18, 39, 57, 48, 15, 51]) - 1
)
"""The 20 tolled links of the paper's §7 (TNTP's 1-based link order, stored 0-based)."""


def cache_dir() -> Path:
    """Where downloads go: ``$INCENTIVE_ENVS_CACHE`` or ``~/.cache/incentive_envs``."""
    return Path(os.environ.get("INCENTIVE_ENVS_CACHE", Path.home() / ".cache" / "incentive_envs"))


def download_tntp(
    name: str,
    url: str,
    files: tuple[str, str],
    expected_digest: str,
    directory: str | os.PathLike | None = None,
    timeout: float = 30.0,
) -> Network:
    """Download a TNTP network and trips file into ``directory`` (default :func:`cache_dir`)
    unless already there, then read them and check :func:`content_digest`.

    A download that fails the check is deleted and raises ``ValueError``; a cached copy
    that fails it is re-downloaded once.
    """
    directory = Path(directory) if directory is not None else cache_dir() / name
    paths = [directory / file for file in files]
    for attempt in range(2):
        if attempt or not all(path.exists() for path in paths):
            for file, path in zip(files, paths):
                with urllib.request.urlopen(url + file, timeout=timeout) as response:
                    write_bytes_atomic(path, response.read())
        network = read_tntp(*paths, name=name)
        if content_digest(network) == expected_digest:
            return network
    for path in paths:
        path.unlink(missing_ok=True)
    raise ValueError(
        f"downloaded {name} from {url} does not match the expected content digest {expected_digest}"
    )


def aequilibrae_sioux_falls_zip() -> Path | None:
    """Path of ``reference_files/sioux_falls.zip`` in an installed ``aequilibrae`` wheel
    (found without importing the package), or ``None``."""
    import importlib.util

    spec = importlib.util.find_spec("aequilibrae")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "reference_files" / "sioux_falls.zip"
        if candidate.exists():
            return candidate
    return None


def read_aequilibrae_sioux_falls(archive: str | os.PathLike) -> Network:
    """Read Sioux Falls from aequilibrae's project archive: the ``links`` table of
    ``project_database.sqlite`` and the demand matrix ``matrices/demand.aem`` (aequilibrae's
    binary matrix format: an 18-byte header of counts and type codes, names, zone indices,
    then the ``zones × zones × cores`` array)."""
    with zipfile.ZipFile(archive) as bundle, tempfile.TemporaryDirectory() as workdir:
        bundle.extract("project_database.sqlite", workdir)
        connection = sqlite3.connect(Path(workdir) / "project_database.sqlite")
        try:
            rows = connection.execute(
                "select a_node, b_node, free_flow_time, capacity_ab, b, power from links order by link_id"
            ).fetchall()
        finally:
            connection.close()
        raw = bundle.read("matrices/demand.aem")
    links = np.array(rows, dtype=np.float64)
    zones = int(np.frombuffer(raw, "<u4", 1, 10)[0])
    cores, n_indices, data_class, data_size = raw[14], raw[15], raw[16], raw[17]
    if (data_class, data_size) != (1, 8):
        raise ValueError(f"{archive}: demand.aem is not float64 (class {data_class}, size {data_size})")
    offset = 18 + 20 + 144 + 50 * cores + 20 * n_indices
    zone_ids = np.frombuffer(raw, "<u8", zones * n_indices, offset).reshape(zones, n_indices)[:, 0]
    offset += zones * 8 * n_indices
    matrix = np.frombuffer(raw, "<f8", zones * zones * cores, offset).reshape(zones, zones, cores)[:, :, 0]
    origins, destinations = np.nonzero(matrix)
    return Network(
        n_nodes=int(max(links[:, :2].max(), zone_ids.max())),
        init_node=links[:, 0].astype(np.int64) - 1,
        term_node=links[:, 1].astype(np.int64) - 1,
        free_flow_time=links[:, 2],
        capacity=links[:, 3],
        delay=links[:, 2] * links[:, 4],
        power=links[:, 5],
        origins=zone_ids[origins].astype(np.int64) - 1,
        destinations=zone_ids[destinations].astype(np.int64) - 1,
        demand=matrix[origins, destinations],
        name="sioux_falls",
    )


def sioux_falls(source: str = "auto", directory: str | os.PathLike | None = None) -> Network:
    """The Sioux Falls network (24 nodes, 76 links, 528 OD pairs, total demand 360,600).

    Parameters
    ----------
    source : {"auto", "aequilibrae", "download"}
        ``aequilibrae``: read the archive bundled in the ``aequilibrae`` wheel (offline;
        ``pip install incentive-envs[traffic]``). ``download``: the TNTP files from
        :data:`SIOUX_FALLS_URL`, cached and checked by :func:`download_tntp`. ``auto``: the
        first that works, aequilibrae first.
    directory : path, optional
        Cache directory for ``download``.
    """
    if source not in ("auto", "aequilibrae", "download"):
        raise ValueError(f"source must be 'auto', 'aequilibrae' or 'download', got {source!r}")
    if source in ("auto", "aequilibrae"):
        archive = aequilibrae_sioux_falls_zip()
        if archive is not None:
            return read_aequilibrae_sioux_falls(archive)
        if source == "aequilibrae":
            raise ValueError(
                "source='aequilibrae' needs the aequilibrae wheel: pip install incentive-envs[traffic]"
            )
    return download_tntp("sioux_falls", SIOUX_FALLS_URL, SIOUX_FALLS_FILES, SIOUX_FALLS_DIGEST, directory)
