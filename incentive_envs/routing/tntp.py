"""TNTP files and the *Transportation Networks for Research* collection by name (SPEC G2).

The collection (Transportation Networks for Research Core Team, *Transportation Networks for
Research*, https://github.com/bstabler/TransportationNetworks) stores every network as text
files in the TNTP format: ``<Folder>/<Name>_net.tntp`` (metadata, then one link per row),
``<Name>_trips.tntp`` (the OD demand, ``Origin k`` blocks of ``destination : trips;``
entries) and ``<Name>_flow.tntp`` (the best known user-equilibrium link flows). Its data
are for academic research; cite the collection in publications.

* :func:`read_tntp` / :func:`write_tntp` read and write network and trips files;
  :func:`read_tntp_flow` reads a best-known flow file onto a network's links and
  :func:`read_tntp_nodes` a node-coordinate file onto its nodes;
* :func:`tntp_network` and :func:`tntp_best_known_flow` give the networks of
  :data:`TNTP_NETWORKS` by their folder name (``"SiouxFalls"``, ``"Anaheim"``,
  ``"Chicago-Sketch"``), read from the cache ``$INCENTIVE_ENVS_CACHE/tntp/<Folder>/``
  (default ``~/.cache/incentive_envs``) or downloaded there from the collection, every file
  checked by the SHA-256 of its bytes;
* :func:`sioux_falls` — Sioux Falls offline from the ``aequilibrae`` wheel (the same network
  as ``tntp_network("SiouxFalls")``, checked by :func:`content_digest`), else from the cache.

Why raw-byte digests for downloads: one check serves every file kind (network, trips and
flow files alike), a file is verified before the parser sees it, anyone can reproduce the
digest with ``sha256sum``, and the CI cache is a byte copy of the collection. The price is
that a cosmetic upstream edit fails the check — loudly, naming both digests.
:func:`content_digest` (a digest of the parsed numbers) remains for comparing networks from
different sources, such as the aequilibrae archive and the TNTP files.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import sqlite3
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from incentive_envs.io import write_bytes_atomic
from incentive_envs.routing.network import MAX_NODES, Network
from incentive_envs.validation import check_bool, check_choice, check_scalar

# -- reading and writing ----------------------------------------------------------------

_METADATA = re.compile(r"<([^>]+)>\s*(.*?)")
_INTEGER = re.compile(r"[+-]?\d+(\.0*)?")
_STANDARD_COLUMNS = (
    "init_node",
    "term_node",
    "capacity",
    "length",
    "free_flow_time",
    "b",
    "power",
    "speed",
    "toll",
    "link_type",
)
"""TNTP's column order, used when a link table has no ``~`` header."""
_REQUIRED_COLUMNS = ("init_node", "term_node", "capacity", "free_flow_time", "b", "power")
_OPTIONAL_COLUMNS = ("length", "toll")
_COLUMN_LOWER_BOUNDS = {
    "capacity": (0.0, False),
    "free_flow_time": (0.0, True),
    "b": (0.0, True),
    "power": (0.0, True),
    "length": (0.0, True),
}


def _as_path(value, name: str) -> Path:
    if not isinstance(value, (str, os.PathLike)):
        raise ValueError(f"{name} must be a path (str or os.PathLike), got {value!r}")
    return Path(value)


def _read_lines(path: Path) -> list[str]:
    """The file's lines: UTF-8 with or without a byte-order mark, any line ends."""
    try:
        return path.read_bytes().decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text (byte {error.start}: {error.reason})") from None
    except OSError as error:
        raise ValueError(f"{path}: cannot read the file: {error.strerror}") from None


def _read_metadata(lines: list[str], path: Path) -> tuple[dict[str, tuple[str, int]], int]:
    """``{KEY: (value, line number)}`` of the metadata block and the index of the first line
    after ``<END OF METADATA>``; blank and ``~`` comment lines are skipped."""
    metadata: dict[str, tuple[str, int]] = {}
    for index, line in enumerate(lines):
        text = line.strip()
        if not text or text.startswith("~"):
            continue
        match = _METADATA.fullmatch(text)
        if match is None:
            raise ValueError(
                f"{path}:{index + 1}: expected a metadata line '<NAME> value' or <END OF METADATA>, "
                f"got {text!r}; is this a TNTP file?"
            )
        key = match.group(1).strip().upper()
        if key == "END OF METADATA":
            return metadata, index + 1
        if key in metadata:
            raise ValueError(f"{path}:{index + 1}: metadata <{key}> given twice")
        metadata[key] = (match.group(2).strip(), index + 1)
    raise ValueError(f"{path}: no <END OF METADATA> line; is this a TNTP file?")


def _metadata_int(
    metadata: dict[str, tuple[str, int]],
    key: str,
    path: Path,
    low: int,
    high: int,
    default: int | None = None,
) -> int:
    if key not in metadata:
        if default is None:
            raise ValueError(f"{path}: missing metadata <{key}>")
        return default
    value, line = metadata[key]
    if _INTEGER.fullmatch(value) is None:
        raise ValueError(f"{path}:{line}: metadata <{key}> must be an integer, got {value!r}")
    number = int(float(value))
    if not low <= number <= high:
        raise ValueError(f"{path}:{line}: metadata <{key}> must be in [{low}, {high}], got {number}")
    return number


def _check_network(network) -> None:
    if not isinstance(network, Network):
        raise ValueError(f"network must be a Network, got {type(network).__name__}")


def _normalise_column(name: str) -> str:
    return re.sub(r"[^a-z]", "", name.lower())


def _header_columns(text: str, path: Path, line: int) -> dict[str, int] | None:
    """Positions of the known columns in a ``~`` line, or ``None`` if the line is a comment
    (it does not name both ``init_node`` and ``term_node``)."""
    body = text.lstrip("~").replace(";", " ")
    fields = [_normalise_column(field) for field in body.split("\t")]
    fields = [field for field in fields if field]
    if len(fields) <= 1:  # separated by spaces only
        fields = [_normalise_column(field) for field in body.split()]
    positions = {field: position for position, field in enumerate(fields)}
    if "initnode" not in positions or "termnode" not in positions:
        return None
    columns = {}
    for column in _REQUIRED_COLUMNS + _OPTIONAL_COLUMNS:
        key = _normalise_column(column)
        if key in positions:
            columns[column] = positions[key]
        elif column in _REQUIRED_COLUMNS:
            raise ValueError(f"{path}:{line}: header has no column {column!r}: {text!r}")
    return columns


def _parse_number(field: str, column: str, path: Path, line: int) -> float:
    try:
        value = float(field)
    except ValueError:
        raise ValueError(f"{path}:{line}: malformed number {field!r} in column {column!r}") from None
    if not np.isfinite(value):
        raise ValueError(f"{path}:{line}: non-finite number {field!r} in column {column!r}")
    return value


def _read_links(lines: list[str], start: int, n_nodes: int, path: Path) -> dict[str, np.ndarray]:
    """The link table after the metadata, column by column (lengths and tolls 0 where the
    table has no such column)."""
    columns = {name: position for position, name in enumerate(_STANDARD_COLUMNS)}
    columns = {name: columns[name] for name in _REQUIRED_COLUMNS + _OPTIONAL_COLUMNS}
    rows = []
    for index in range(start, len(lines)):
        text = lines[index].strip()
        if not text:
            continue
        if text.startswith("~"):
            header = None if rows else _header_columns(text, path, index + 1)
            if header is not None:
                columns = header
            continue
        fields = text.rstrip(";").split()
        needed = max(columns[name] for name in _REQUIRED_COLUMNS) + 1
        if len(fields) < needed:
            raise ValueError(
                f"{path}:{index + 1}: expected at least {needed} columns, got {len(fields)}: {text!r}"
            )
        row = {}
        for name, position in columns.items():
            if position >= len(fields):
                row[name] = 0.0  # an optional column the row leaves out
                continue
            value = _parse_number(fields[position], name, path, index + 1)
            if name in ("init_node", "term_node") and (value != int(value) or not 1 <= value <= n_nodes):
                what = name.replace("_", " ")
                raise ValueError(f"{path}:{index + 1}: unknown {what} {value:g} (nodes are 1..{n_nodes})")
            if name in _COLUMN_LOWER_BOUNDS:
                low, inclusive = _COLUMN_LOWER_BOUNDS[name]
                if value < low or (value == low and not inclusive):
                    relation = ">=" if inclusive else ">"
                    raise ValueError(f"{path}:{index + 1}: {name} must be {relation} {low:g}, got {value:g}")
            row[name] = value
        for position in sorted(set(range(len(fields))) - set(columns.values())):
            _parse_number(fields[position], f"column {position + 1}", path, index + 1)  # unused, but a number
        if row["b"] > 0 and row["free_flow_time"] > 0 and 0 < row["power"] < 1:
            raise ValueError(f"{path}:{index + 1}: power must be 0 or >= 1, got {row['power']:g}")
        rows.append(row)
    if not rows:
        raise ValueError(f"{path}: no links")
    return {
        name: np.array([row.get(name, 0.0) for row in rows]) for name in _REQUIRED_COLUMNS + _OPTIONAL_COLUMNS
    }


def read_tntp(
    net_path: str | os.PathLike,
    trips_path: str | os.PathLike,
    name: str | None = None,
    *,
    toll_weight: float = 0.0,
    distance_weight: float = 0.0,
) -> Network:
    """Read a TNTP network file and trips file into a :class:`Network`.

    Parameters
    ----------
    net_path, trips_path : path
        The ``*_net.tntp`` and ``*_trips.tntp`` files (UTF-8, with or without a byte-order
        mark, any line ends; ``~`` lines are comments anywhere).
    name : str, optional
        Default: the network file's name without ``_net.tntp``.
    toll_weight, distance_weight : float
        Weights ``>= 0`` of the generalised cost: the network's fixed cost per link is
        ``toll_weight · toll + distance_weight · length`` (the file's ``toll`` and ``length``
        columns; 0 where absent).

    Notes
    -----
    The link table is read by its ``~`` header (the first ``~`` line naming ``init_node`` and
    ``term_node``; names are matched ignoring case, spaces and underscores), else in TNTP's
    column order ``init_node term_node capacity length free_flow_time b power speed toll
    link_type``. Links with ``b = 0`` or ``power = 0`` have constant costs. Intrazonal trips
    (origin = destination) count toward ``<TOTAL OD FLOW>`` (compared with relative
    tolerance 1e-6) but load no link and are left out of the network's demand.

    Raises ``ValueError`` naming the file and line for malformed or missing metadata
    (non-integer or out-of-range counts, a non-finite total), malformed numbers in any
    column, unknown nodes or zones, out-of-range link parameters, and link counts or
    totals that disagree with the metadata.
    """
    net_path, trips_path = _as_path(net_path, "net_path"), _as_path(trips_path, "trips_path")
    toll_weight = check_scalar(toll_weight, "toll_weight", low=0.0)
    distance_weight = check_scalar(distance_weight, "distance_weight", low=0.0)
    lines = _read_lines(net_path)
    metadata, start = _read_metadata(lines, net_path)
    n_nodes = _metadata_int(metadata, "NUMBER OF NODES", net_path, 1, MAX_NODES)
    n_links_expected = _metadata_int(metadata, "NUMBER OF LINKS", net_path, 0, 2**62)
    first_thru = _metadata_int(metadata, "FIRST THRU NODE", net_path, 0, n_nodes + 1, default=1)
    _metadata_int(metadata, "NUMBER OF ZONES", net_path, 1, n_nodes, default=1)  # checked, not needed
    table = _read_links(lines, start, n_nodes, net_path)
    n_links = table["init_node"].size
    if n_links != n_links_expected:
        raise ValueError(
            f"{net_path}:{metadata['NUMBER OF LINKS'][1]}: <NUMBER OF LINKS> is {n_links_expected} but "
            f"{n_links} links were read"
        )
    origins, destinations, demand = _read_trips(trips_path, n_nodes)
    try:
        return Network(
            n_nodes=n_nodes,
            init_node=table["init_node"].astype(np.int64) - 1,
            term_node=table["term_node"].astype(np.int64) - 1,
            free_flow_time=table["free_flow_time"],
            capacity=table["capacity"],
            delay=table["free_flow_time"] * table["b"],
            power=table["power"],
            origins=origins,
            destinations=destinations,
            demand=demand,
            first_thru_node=max(first_thru - 1, 0),
            name=name or net_path.name.removesuffix(".tntp").removesuffix("_net"),
            fixed_cost=toll_weight * table["toll"] + distance_weight * table["length"],
            length=table["length"],
            toll=table["toll"],
        )
    except ValueError as error:
        raise ValueError(f"{net_path}: {error}") from None


def _read_trips(path: Path, n_nodes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lines = _read_lines(path)
    metadata, start = _read_metadata(lines, path)
    n_zones = _metadata_int(metadata, "NUMBER OF ZONES", path, 1, MAX_NODES)
    if n_zones > n_nodes:
        raise ValueError(f"{path}: {n_zones} zones but the network has only {n_nodes} nodes")
    declared = None
    if "TOTAL OD FLOW" in metadata:
        text, line = metadata["TOTAL OD FLOW"]
        try:
            declared = float(text)
        except ValueError:
            raise ValueError(f"{path}:{line}: <TOTAL OD FLOW> is not a number: {text!r}") from None
        if not np.isfinite(declared) or declared < 0:
            raise ValueError(f"{path}:{line}: <TOTAL OD FLOW> must be finite and >= 0, got {text!r}")
    origin = None
    entries: dict[tuple[int, int], float] = {}
    intrazonal = 0.0
    for index in range(start, len(lines)):
        text = lines[index].strip()
        if not text or text.startswith("~"):
            continue
        if text.lower().startswith("origin"):
            parts = text.split()
            if len(parts) != 2 or not parts[1].isdigit() or not 1 <= int(parts[1]) <= n_zones:
                raise ValueError(f"{path}:{index + 1}: bad origin line {text!r} (zones are 1..{n_zones})")
            origin = int(parts[1]) - 1
            continue
        if origin is None:
            raise ValueError(f"{path}:{index + 1}: demand entries before any 'Origin' line: {text!r}")
        for entry in filter(None, (item.strip() for item in text.split(";"))):
            destination, separator, volume = entry.partition(":")
            try:
                destination_index, value = int(destination), float(volume)
            except ValueError:
                raise ValueError(f"{path}:{index + 1}: malformed entry {entry!r}") from None
            if not separator or not np.isfinite(value) or value < 0:
                raise ValueError(f"{path}:{index + 1}: malformed entry {entry!r}")
            if not 1 <= destination_index <= n_zones:
                raise ValueError(f"{path}:{index + 1}: unknown destination zone {destination_index}")
            if destination_index - 1 == origin:
                intrazonal += value
            elif value > 0:
                key = (origin, destination_index - 1)
                entries[key] = entries.get(key, 0.0) + value
    if not entries:
        raise ValueError(f"{path}: no positive demand between distinct zones")
    keys = sorted(entries)
    demand = np.array([entries[key] for key in keys])
    total = float(demand.sum()) + intrazonal
    if declared is not None and abs(declared - total) > 1e-6 * max(declared, 1.0):
        raise ValueError(
            f"{path}:{metadata['TOTAL OD FLOW'][1]}: <TOTAL OD FLOW> is {declared:g} but the entries "
            f"sum to {total:g} (intrazonal {intrazonal:g} included)"
        )
    pairs = np.array(keys, dtype=np.int64)
    return pairs[:, 0], pairs[:, 1], demand


def read_tntp_flow(path: str | os.PathLike, network: Network) -> np.ndarray:
    """The link flows of a TNTP flow file (rows ``from to volume cost`` after a header line)
    in ``network``'s link order; parallel links are matched in file order.

    Raises ``ValueError`` naming the file and line for malformed rows, links the network
    does not have, and links the file lists twice or leaves out.
    """
    path = _as_path(path, "path")
    _check_network(network)
    lines = _read_lines(path)
    keys = network.init_node * network.n_nodes + network.term_node
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    flow = np.full(network.n_links, np.nan)
    rows = [(index, line.split()) for index, line in enumerate(lines) if line.strip()]
    if not rows or not rows[0][1][0].lower().startswith("from"):
        raise ValueError(f"{path}: expected a header line 'From To Volume Cost'")
    for index, fields in rows[1:]:
        if len(fields) < 3:
            raise ValueError(f"{path}:{index + 1}: expected 'from to volume [cost]', got {lines[index]!r}")
        tail, head, volume = (
            _parse_number(field, column, path, index + 1)
            for field, column in zip(fields, ("from", "to", "volume"))
        )
        if volume < 0:
            raise ValueError(f"{path}:{index + 1}: volume must be >= 0, got {volume:g}")
        if (
            tail != int(tail)
            or head != int(head)
            or not (1 <= tail <= network.n_nodes and 1 <= head <= network.n_nodes)
        ):
            raise ValueError(f"{path}:{index + 1}: the network has no link {tail:g} -> {head:g}")
        key = (int(tail) - 1) * network.n_nodes + int(head) - 1
        first = np.searchsorted(sorted_keys, key)
        last = np.searchsorted(sorted_keys, key, side="right")
        if first == last:
            raise ValueError(f"{path}:{index + 1}: the network has no link {tail:g} -> {head:g}")
        unfilled = [int(link) for link in order[first:last] if np.isnan(flow[link])]
        if not unfilled:
            raise ValueError(f"{path}:{index + 1}: link {tail:g} -> {head:g} is listed twice")
        flow[unfilled[0]] = volume
    if np.isnan(flow).any():
        link = int(np.flatnonzero(np.isnan(flow))[0])
        raise ValueError(
            f"{path}: no flow for link {link} ({network.init_node[link] + 1} -> {network.term_node[link] + 1})"
        )
    return flow


def read_tntp_nodes(path: str | os.PathLike, network: Network) -> np.ndarray:
    """The node coordinates of a TNTP node file (rows ``node x y`` after a header line
    ``Node X Y``), shape ``(n_nodes, 2)`` in ``network``'s node order (the collection's
    units: Sioux Falls in degrees, Chicago Sketch in Illinois State Plane feet).

    Raises ``ValueError`` naming the file and line for malformed rows, unknown or repeated
    nodes, and nodes the file leaves out.
    """
    path = _as_path(path, "path")
    _check_network(network)
    lines = _read_lines(path)
    rows = [(index, line.replace(";", " ").split()) for index, line in enumerate(lines) if line.strip()]
    if not rows or [field.lower() for field in rows[0][1][:3]] != ["node", "x", "y"]:
        raise ValueError(f"{path}: expected a header line 'Node X Y'")
    coordinates = np.full((network.n_nodes, 2), np.nan)
    for index, fields in rows[1:]:
        if len(fields) != 3:
            raise ValueError(f"{path}:{index + 1}: expected 'node x y', got {lines[index]!r}")
        node, x, y = (_parse_number(field, column, path, index + 1) for field, column in zip(fields, "nxy"))
        if node != int(node) or not 1 <= node <= network.n_nodes:
            raise ValueError(f"{path}:{index + 1}: unknown node {node:g} (nodes are 1..{network.n_nodes})")
        if not np.isnan(coordinates[int(node) - 1, 0]):
            raise ValueError(f"{path}:{index + 1}: node {node:g} is listed twice")
        coordinates[int(node) - 1] = x, y
    if np.isnan(coordinates).any():
        raise ValueError(
            f"{path}: no coordinates for node {int(np.flatnonzero(np.isnan(coordinates[:, 0]))[0]) + 1}"
        )
    return coordinates


def write_tntp(network: Network, net_path: str | os.PathLike, trips_path: str | os.PathLike) -> None:
    """Write ``network`` as TNTP network and trips files (inverse of :func:`read_tntp`).

    Raises ``ValueError`` for what TNTP files cannot express: links with ``fft = 0`` and
    ``delay > 0`` (TNTP's ``fft (1 + b (x/cap)^p)``), non-zero fixed costs (the collection
    keeps generalised-cost weights outside its files: write the network without them and pass
    ``toll_weight``/``distance_weight`` to :func:`read_tntp`) and demand between nodes that
    are not zones.
    """
    _check_network(network)
    net_path, trips_path = _as_path(net_path, "net_path"), _as_path(trips_path, "trips_path")
    no_constant = (network.free_flow_time == 0) & (network.delay > 0)
    if no_constant.any():
        raise ValueError(
            f"link {int(np.flatnonzero(no_constant)[0])} has fft = 0 and delay > 0, which TNTP's "
            "fft (1 + b (x/cap)^p) cannot express"
        )
    if np.any(network.fixed_cost):
        raise ValueError(
            "TNTP files cannot store fixed costs: write the network read without toll_weight and "
            "distance_weight, and pass them to read_tntp"
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
            f"\t{network.init_node[e] + 1}\t{network.term_node[e] + 1}\t{float(network.capacity[e])!r}"
            f"\t{float(network.length[e])!r}\t{float(network.free_flow_time[e])!r}\t{float(b[e])!r}"
            f"\t{float(network.power[e])!r}\t0\t{float(network.toll[e])!r}\t1\t;"
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
    """SHA-256 of the network's numbers (links, costs, lengths, tolls and demand, each
    printed to 10 significant digits): equal for the same network from different sources
    or formats (and across the last-bit differences of TNTP's ``b = delay / fft`` round trip)."""
    digest = hashlib.sha256()
    for array in (
        network.init_node,
        network.term_node,
        network.free_flow_time,
        network.capacity,
        network.delay,
        network.power,
        network.fixed_cost,
        network.length,
        network.toll,
        network.origins,
        network.destinations,
        network.demand,
    ):
        digest.update(" ".join(f"{value:.10g}" for value in np.asarray(array, dtype=float)).encode())
        digest.update(b"|")
    return digest.hexdigest()


# -- the collection by name -------------------------------------------------------------

MAX_DOWNLOAD_BYTES = 200_000_000
"""Downloads larger than this are refused (the largest file known here is 3 MB)."""

TNTP_BASE_URL = "https://raw.githubusercontent.com/bstabler/TransportationNetworks/master/"
"""Where :func:`tntp_network` downloads from: ``<base>/<Folder>/<file>``."""


@dataclass(frozen=True)
class TntpNetworkFiles:
    """One network of the collection: its folder, files, their SHA-256 digests and the
    generalised-cost weights its README publishes."""

    folder: str
    net: str
    trips: str
    flow: str
    sha256: dict[str, str]
    toll_weight: float = 0.0
    distance_weight: float = 0.0


TNTP_NETWORKS: dict[str, TntpNetworkFiles] = {
    "SiouxFalls": TntpNetworkFiles(
        "SiouxFalls",
        "SiouxFalls_net.tntp",
        "SiouxFalls_trips.tntp",
        "SiouxFalls_flow.tntp",
        {
            "SiouxFalls_net.tntp": "ace99b24cec69c273ff0cf3d6d074110177f0cc0ae24b0c7a9f4f4cb5e27635c",
            "SiouxFalls_trips.tntp": "56f9566857f3f66730fd5c4232258d7ee3ac2931a476526331afd062f4958de7",
            "SiouxFalls_flow.tntp": "5d0b83a22ecc3ce79dabb2b2972162b78c5eda571dcb5b3687429d8397654fee",
        },
    ),
    "Anaheim": TntpNetworkFiles(
        "Anaheim",
        "Anaheim_net.tntp",
        "Anaheim_trips.tntp",
        "Anaheim_flow.tntp",
        {
            "Anaheim_net.tntp": "99933b415e9500b13907829c37a43cfa9141714fad5af279081e28e5f9356f9a",
            "Anaheim_trips.tntp": "906893854cd0db4479c0b5f07678ce5616fa8e42e2b997f918c378309c66a94e",
            "Anaheim_flow.tntp": "eecd21c2a908b6a1c6729045ea260e96df1de026f05281d341fc281f2552cebe",
        },
    ),
    "Chicago-Sketch": TntpNetworkFiles(
        "Chicago-Sketch",
        "ChicagoSketch_net.tntp",
        "ChicagoSketch_trips.tntp",
        "ChicagoSketch_flow.tntp",
        {
            "ChicagoSketch_net.tntp": "4396bff6101cb5ad3edaf0eb5b9aec051055cb7f0d85be907d24b43f98bf0027",
            "ChicagoSketch_trips.tntp": "efe68abffc4af09e344cf1e175cfc048c08f4cd8f1f5454f74371b40e8245edc",
            "ChicagoSketch_flow.tntp": "068ee541d0e4d06e1e829bebc629ecf18c0f1eaf3b8239aff82de7ac3631370b",
        },
        toll_weight=0.02,
        distance_weight=0.04,
    ),
}
"""The networks :func:`tntp_network` knows, by the collection's folder names (treat as
read-only). Weights: Chicago Sketch's README gives 0.02 min/cent and 0.04 min/mile (its
published optimal Beckmann objective 17,313,018.7387477 uses them); the others give 0."""


def cache_dir() -> Path:
    """The download cache: ``$INCENTIVE_ENVS_CACHE`` or ``~/.cache/incentive_envs``."""
    return Path(os.environ.get("INCENTIVE_ENVS_CACHE", Path.home() / ".cache" / "incentive_envs"))


def _network_files(name: str) -> TntpNetworkFiles:
    return TNTP_NETWORKS[check_choice(name, "name", TNTP_NETWORKS)]


def _verified_file(directory: Path, file: str, sha256: str, url: str, download: bool, timeout: float) -> Path:
    """``directory/file`` if its bytes have digest ``sha256``; otherwise (missing or stale)
    downloaded from ``url`` when ``download``, and written only if the download matches."""
    path = directory / file
    if path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == sha256:
        return path
    if not download:
        state = "has the wrong SHA-256 digest" if path.exists() else "is missing"
        raise FileNotFoundError(f"{path} {state} and download=False")
    with urllib.request.urlopen(url, timeout=timeout) as response:
        data = response.read(MAX_DOWNLOAD_BYTES + 1)
    if len(data) > MAX_DOWNLOAD_BYTES:
        raise ValueError(f"{url} is larger than {MAX_DOWNLOAD_BYTES} bytes; nothing was written")
    received = hashlib.sha256(data).hexdigest()
    if received != sha256:
        raise ValueError(f"{url} has SHA-256 {received}, expected {sha256}; nothing was written")
    write_bytes_atomic(path, data)
    return path


def _collection_paths(
    name: str, files: tuple[str, ...], directory, download, base_url: str, timeout: float
) -> list[Path]:
    entry = _network_files(name)
    download = check_bool(download, "download")
    timeout = check_scalar(timeout, "timeout", low=0.0, low_inclusive=False)
    if not isinstance(base_url, str):
        raise ValueError(f"base_url must be a string, got {base_url!r}")
    folder = cache_dir() / "tntp" / entry.folder if directory is None else _as_path(directory, "directory")
    return [
        _verified_file(
            folder, file, entry.sha256[file], f"{base_url}{entry.folder}/{file}", download, timeout
        )
        for file in files
    ]


def tntp_network(
    name: str,
    *,
    toll_weight: float | None = None,
    distance_weight: float | None = None,
    directory: str | os.PathLike | None = None,
    download: bool = True,
    base_url: str = TNTP_BASE_URL,
    timeout: float = 30.0,
) -> Network:
    """A network of the collection by its folder name.

    Parameters
    ----------
    name : {"SiouxFalls", "Anaheim", "Chicago-Sketch"}
        The collection's folder name (the keys of :data:`TNTP_NETWORKS`).
    toll_weight, distance_weight : float, optional
        Generalised-cost weights (fixed cost ``toll_weight · toll + distance_weight ·
        length`` per link); ``None``: the weights the collection publishes for the network
        (Chicago Sketch 0.02 and 0.04, the others 0).
    directory : path, optional
        The folder holding the network's files; default ``cache_dir()/tntp/<Folder>``.
    download : bool
        Download files that are missing or fail their SHA-256 check (from
        ``base_url + "<Folder>/<file>"``); with ``False`` such files raise
        ``FileNotFoundError``.
    base_url : str
        The collection's raw-file URL (a mirror, or a local server in tests).
    timeout : float
        Seconds per download.

    A download whose digest differs raises ``ValueError`` and writes nothing.
    """
    entry = _network_files(name)
    toll_weight = (
        entry.toll_weight if toll_weight is None else check_scalar(toll_weight, "toll_weight", low=0.0)
    )
    distance_weight = (
        entry.distance_weight
        if distance_weight is None
        else check_scalar(distance_weight, "distance_weight", low=0.0)
    )
    net, trips = _collection_paths(name, (entry.net, entry.trips), directory, download, base_url, timeout)
    return read_tntp(net, trips, name=name, toll_weight=toll_weight, distance_weight=distance_weight)


def tntp_best_known_flow(
    name: str,
    *,
    directory: str | os.PathLike | None = None,
    download: bool = True,
    base_url: str = TNTP_BASE_URL,
    timeout: float = 30.0,
) -> np.ndarray:
    """The collection's best known user-equilibrium link flows of network ``name``, in the
    link order of :func:`tntp_network` (arguments as there)."""
    entry = _network_files(name)
    network = tntp_network(name, directory=directory, download=download, base_url=base_url, timeout=timeout)
    (flow,) = _collection_paths(name, (entry.flow,), directory, download, base_url, timeout)
    return read_tntp_flow(flow, network)


# -- Sioux Falls ------------------------------------------------------------------------

SIOUX_FALLS_DIGEST = "91be61669d17c3f430ba2dbf3a02e2a0f67c0415b19b7fd6fedd229c0aff0a94"
""":func:`content_digest` of ``tntp_network("SiouxFalls")`` (24 nodes, 76 links, 528 OD
pairs, demand 360,600)."""

SIOUX_FALLS_TOLLED_LINKS = (
    np.array([11, 35, 32, 68, 46, 21, 65, 52, 71, 74, 33, 64, 69, 14, 18, 39, 57, 48, 15, 51]) - 1
)
"""The 20 tolled links of the paper's §7 (TNTP's 1-based link order, stored 0-based)."""


def aequilibrae_sioux_falls_zip() -> Path | None:
    """Path of ``reference_files/sioux_falls.zip`` in an installed ``aequilibrae`` wheel
    (found without importing the package), or ``None``."""
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
    then the ``zones × zones × cores`` array).

    The archive's ``distance`` is geometric and its tolls are its own, so lengths are set to
    the free-flow times and tolls to 0 as in the TNTP files (whose README says "link lengths
    are set arbitrarily equal to free flow travel times"); the result is checked against
    :data:`SIOUX_FALLS_DIGEST`.
    """
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
    network = Network(
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
        name="SiouxFalls",
        length=links[:, 2],
    )
    if content_digest(network) != SIOUX_FALLS_DIGEST:
        raise ValueError(f"{archive}: this aequilibrae archive's Sioux Falls differs from the TNTP files")
    return network


def sioux_falls(source: str = "auto", directory: str | os.PathLike | None = None) -> Network:
    """The Sioux Falls network (24 nodes, 76 links, 528 OD pairs, total demand 360,600),
    equal to ``tntp_network("SiouxFalls")`` whichever the source.

    Parameters
    ----------
    source : {"auto", "aequilibrae", "download"}
        ``aequilibrae``: read the archive bundled in the ``aequilibrae`` wheel (offline;
        ``pip install -e '.[traffic]'`` from a clone). ``download``: :func:`tntp_network` (the
        cache, else a download). ``auto``: the first that works, aequilibrae first.
    directory : path, optional
        The folder of the TNTP files for ``download`` (as in :func:`tntp_network`).
    """
    check_choice(source, "source", ("auto", "aequilibrae", "download"))
    if source in ("auto", "aequilibrae"):
        archive = aequilibrae_sioux_falls_zip()
        if archive is not None:
            return read_aequilibrae_sioux_falls(archive)
        if source == "aequilibrae":
            raise ValueError(
                "source='aequilibrae' needs the aequilibrae wheel: pip install aequilibrae (from a clone: pip install -e '.[traffic]')"
            )
    return tntp_network("SiouxFalls", directory=directory)
