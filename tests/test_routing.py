"""Routing: TNTP reader/writer, network validation, Sioux Falls, cached downloads, link-based
UE/SO closed forms (Pigou, Braess, tolled Braess), k shortest paths, the logit routing game
(equilibrium, Jacobian products, hypergradient, social optimum)."""

import contextlib
import functools
import hashlib
import http.server
import itertools
import re
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import requires_sioux_falls
from hypothesis_compat import given, settings, st

from incentive_envs.routing import (
    Network,
    PathSet,
    RoutingGame,
    braess,
    grid,
    k_shortest_paths,
    network_from_links,
    pigou,
    read_tntp,
    sioux_falls,
    tntp_best_known_flow,
    tntp_network,
    write_tntp,
)
from incentive_envs.routing.assignment import ConvergenceWarning, ShortestPathGraph, user_equilibrium
from incentive_envs.routing.game import logit_equilibrium
from incentive_envs.routing.network import BRAESS_BRIDGE_LINK
from incentive_envs.routing.tntp import (
    SIOUX_FALLS_DIGEST,
    SIOUX_FALLS_TOLLED_LINKS,
    TNTP_NETWORKS,
    TntpNetworkFiles,
    cache_dir,
    content_digest,
)
from planners.hypergradient import exact_hypergradient

ARRAYS = (
    "init_node",
    "term_node",
    "free_flow_time",
    "capacity",
    "power",
    "origins",
    "destinations",
    "demand",
)


@pytest.fixture(scope="module")
def sf():
    return sioux_falls("aequilibrae")


@pytest.fixture(scope="module")
def sf_ue(sf):
    return user_equilibrium(sf, relative_gap=1e-7)


@pytest.fixture(scope="module")
def sf_game(sf):
    return RoutingGame(sf, 1.0, SIOUX_FALLS_TOLLED_LINKS)


def _assert_same_network(a: Network, b: Network):
    assert a.n_nodes == b.n_nodes and a.first_thru_node == b.first_thru_node
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    # delay goes through b = delay / fft and back: equal up to rounding
    np.testing.assert_allclose(a.delay, b.delay, rtol=1e-15, atol=0)


def _simple_paths(network: Network, origin: int, destination: int) -> set[tuple[int, ...]]:
    """Every loopless path (as link tuples) by depth-first search (brute force)."""
    outgoing = [[] for _ in range(network.n_nodes)]
    for e in range(network.n_links):
        outgoing[int(network.init_node[e])].append(e)
    found = set()

    def visit(node, visited, path):
        if node == destination:
            found.add(tuple(path))
            return
        for e in outgoing[node]:
            head = int(network.term_node[e])
            if head not in visited and (head >= network.first_thru_node or head == destination):
                visit(head, visited | {head}, [*path, e])

    visit(origin, {origin}, [])
    return found


def _od_paths(paths: PathSet, i: int) -> tuple[tuple[int, ...], ...]:
    start = sum(paths.sizes[:i])
    return paths.links[start : start + paths.sizes[i]]


# -- TNTP files -------------------------------------------------------------------------

HEADER = (
    "~ \tInit node \tTerm node \tCapacity \tLength \tFree Flow Time \tB\tPower\tSpeed limit \tToll \tType\t;"
)

NET_TEXT = f"""<NUMBER OF ZONES> 2
<NUMBER OF NODES> 4
<FIRST THRU NODE> 1
<NUMBER OF LINKS> 5
<ORIGINAL HEADER>{HEADER}
<END OF METADATA>


{HEADER}
\t1\t3\t25900.20064\t6\t6\t0.15\t4\t0\t0\t1\t;
\t3\t2\t4958.18\t4\t4\t0.15\t4\t0\t0\t1\t;
\t1\t4\t100\t2\t2.5\t1\t1\t0\t0\t1\t;
\t4\t2\t100\t2\t2.5\t1\t1\t0\t0\t1\t;
\t2\t1\t1.5\t0\t3\t0\t1\t0\t0\t1\t;
"""

TRIPS_TEXT = """<NUMBER OF ZONES> 2
<TOTAL OD FLOW> 350.5
<END OF METADATA>


Origin  1
    1 :      0.0;    2 :    300.0;

Origin  2
    1 :     50.5;    2 :      0.0;
"""

EXPECTED = {
    "init_node": [0, 2, 0, 3, 1],
    "term_node": [2, 1, 3, 1, 0],
    "capacity": [25900.20064, 4958.18, 100.0, 100.0, 1.5],
    "free_flow_time": [6.0, 4.0, 2.5, 2.5, 3.0],
    "delay": [0.9, 0.6, 2.5, 2.5, 0.0],
    "power": [4.0, 4.0, 1.0, 1.0, 1.0],
    "origins": [0, 1],
    "destinations": [1, 0],
    "demand": [300.0, 50.5],
}


def _write(tmp_path: Path, net_text: str = NET_TEXT, trips_text: str = TRIPS_TEXT, stem: str = "tiny"):
    net, trips = tmp_path / f"{stem}_net.tntp", tmp_path / f"{stem}_trips.tntp"
    net.write_text(net_text)
    trips.write_text(trips_text)
    return net, trips


def _assert_expected(network: Network):
    assert network.n_nodes == 4 and network.n_links == 5 and network.n_od == 2
    assert network.first_thru_node == 0
    for name, values in EXPECTED.items():
        np.testing.assert_allclose(getattr(network, name), values, rtol=1e-15, err_msg=name)


def test_read_hand_written_tntp_with_tntp_style_header(tmp_path):
    network = read_tntp(*_write(tmp_path))
    _assert_expected(network)
    assert network.name == "tiny"
    assert read_tntp(*_write(tmp_path), name="other").name == "other"
    assert network.total_demand == 350.5
    # BPR: t(x) = fft (1 + b (x/cap)^p)
    flow = np.array([25900.20064, 2 * 4958.18, 50.0, 0.0, 7.0])
    np.testing.assert_allclose(network.link_cost(flow), [6.9, 4.0 * (1 + 0.15 * 16), 3.75, 2.5, 3.0])


def test_read_tntp_without_header_uses_the_standard_column_order(tmp_path):
    net_text = NET_TEXT.replace(HEADER + "\n\t1", "\t1")  # drop the ~ line (not the metadata copy)
    assert net_text.count("~") == 1
    _assert_expected(read_tntp(*_write(tmp_path, net_text)))


def test_read_tntp_follows_a_permuted_header(tmp_path):
    rows = [
        "\t3\t1\t6\t25900.20064\t0.15\t4\t;",
        "\t2\t3\t4\t4958.18\t0.15\t4\t;",
        "\t4\t1\t2.5\t100\t1\t1\t;",
        "\t2\t4\t2.5\t100\t1\t1\t;",
        "\t1\t2\t3\t1.5\t0\t1\t;",
    ]
    metadata = NET_TEXT.split("<END OF METADATA>")[0] + "<END OF METADATA>\n"
    header = "~\tterm_node\tinit_node\tfree_flow_time\tcapacity\tb\tpower\t;"
    _assert_expected(read_tntp(*_write(tmp_path, metadata + "\n".join([header, *rows]) + "\n")))
    # a header separated by spaces only (no tabs) is split on whitespace
    spaced = "~ term_node init_node free_flow_time capacity b power ;"
    _assert_expected(read_tntp(*_write(tmp_path, metadata + "\n".join([spaced, *rows]) + "\n")))


def test_read_tntp_first_thru_node(tmp_path):
    net_text = NET_TEXT.replace("<FIRST THRU NODE> 1", "<FIRST THRU NODE> 3")
    assert read_tntp(*_write(tmp_path, net_text)).first_thru_node == 2
    no_entry = NET_TEXT.replace("<FIRST THRU NODE> 1\n", "")
    assert read_tntp(*_write(tmp_path, no_entry)).first_thru_node == 0


def _hand_written_network() -> Network:
    """Zones 0, 1 (first_thru_node 2), parallel links, fft > 0 with b = 0, fft = 0 with
    delay = 0, non-integer powers."""
    links = [
        (0, 2, 1.25, 3.5, 0.1875, 4.0),
        (2, 3, 2.0, 1.0, 0.0, 1.0),
        (2, 3, 3.0, 2.0, 0.45, 2.5),
        (3, 1, 0.0, 7.0, 0.0, 1.0),
        (1, 4, 0.7, 0.3, 0.3, 1.5),
        (4, 0, 10.0, 100.0, 1.5, 4.0),
        (4, 2, 5.5, 12.25, 0.825, 3.0),
    ]
    return network_from_links(5, links, {(0, 1): 3.0, (1, 0): 0.25}, "hand", first_thru_node=2)


@pytest.mark.parametrize("make", [lambda: grid(3, 3), _hand_written_network, lambda: grid(2, 4, seed=7)])
def test_write_read_round_trip(tmp_path, make):
    network = make()
    net, trips = tmp_path / "x_net.tntp", tmp_path / "x_trips.tntp"
    write_tntp(network, net, trips)
    back = read_tntp(net, trips, name=network.name)
    _assert_same_network(network, back)
    assert content_digest(back) == content_digest(network)
    assert back.name == network.name
    assert read_tntp(net, trips).name == "x"


@st.composite
def small_networks(draw):
    n_nodes = draw(st.integers(2, 6))
    pairs = [(a, b) for a in range(n_nodes) for b in range(n_nodes) if a != b]
    link_pairs = draw(st.lists(st.sampled_from(pairs), min_size=1, max_size=12))
    positive = st.floats(0.01, 1e4, allow_nan=False, allow_infinity=False)
    links = [
        (a, b, draw(positive), draw(positive), draw(st.floats(0.0, 10.0)), draw(st.floats(1.0, 8.0)))
        for a, b in link_pairs
    ]
    links = [(a, b, fft, cap, fft * bpr, power) for a, b, fft, cap, bpr, power in links]
    od = draw(st.lists(st.sampled_from(pairs), min_size=1, max_size=6, unique=True))
    demand = {pair: draw(positive) for pair in od}
    return network_from_links(n_nodes, links, demand, "random")


@given(small_networks())
@settings(max_examples=40, deadline=None)
def test_write_read_round_trip_of_random_networks(network):
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        net, trips = Path(directory) / "n.tntp", Path(directory) / "t.tntp"
        write_tntp(network, net, trips)
        back = read_tntp(net, trips)
    assert back.n_nodes == network.n_nodes
    # links keep their order; OD pairs come back sorted by (origin, destination)
    order = np.lexsort((network.destinations, network.origins))
    for name in ARRAYS:
        expected = getattr(network, name)
        if name in ("origins", "destinations", "demand"):
            expected = expected[order]
        np.testing.assert_array_equal(getattr(back, name), expected, err_msg=name)
    np.testing.assert_allclose(back.delay, network.delay, rtol=1e-15, atol=0)


def test_round_trip_preserves_the_digest_on_a_rounding_boundary(tmp_path):
    network = network_from_links(
        2, [(0, 1, 5.310901086532215, 1.0, 3.152362396065, 1.0)], {(0, 1): 1.0}, "edge"
    )
    write_tntp(network, tmp_path / "n.tntp", tmp_path / "t.tntp")
    back = read_tntp(tmp_path / "n.tntp", tmp_path / "t.tntp")
    assert content_digest(back) == content_digest(network)


def test_pigou_is_not_tntp_expressible(tmp_path):
    with pytest.raises(ValueError, match="link 1 has fft = 0 and delay > 0"):
        write_tntp(pigou(), tmp_path / "n.tntp", tmp_path / "t.tntp")
    with pytest.raises(ValueError, match="fft = 0"):
        write_tntp(braess(), tmp_path / "n.tntp", tmp_path / "t.tntp")
    assert not (tmp_path / "n.tntp").exists()


def test_write_tntp_rejects_demand_at_through_nodes(tmp_path):
    network = network_from_links(
        3, [(0, 1, 1, 1, 0, 1), (1, 2, 1, 1, 0, 1)], {(0, 2): 1.0}, "x", first_thru_node=1
    )
    with pytest.raises(ValueError, match="first_thru_node"):
        write_tntp(network, tmp_path / "n.tntp", tmp_path / "t.tntp")


def _replace_line(text: str, old: str, new: str) -> tuple[str, int]:
    """``text`` with the (unique) line containing ``old`` changed, and that line's 1-based number."""
    lines = text.split("\n")
    matches = [i for i, line in enumerate(lines) if old in line]
    assert len(matches) == 1, matches
    lines[matches[0]] = lines[matches[0]].replace(old, new)
    return "\n".join(lines), matches[0] + 1


@pytest.mark.parametrize(
    "old, new, problem",
    [
        ("\t25900.20064\t", "\tabc\t", "malformed number 'abc' in column 'capacity'"),
        ("\t4\t2\t100\t", "\t4\t9\t100\t", r"unknown term node 9 \(nodes are 1\.\.4\)"),
        ("\t1\t4\t100\t", "\t5\t4\t100\t", r"unknown init node 5 \(nodes are 1\.\.4\)"),
        ("\t1\t4\t100\t", "\t0\t4\t100\t", "unknown init node 0"),
        ("\t1\t4\t100\t", "\t1.5\t4\t100\t", "unknown init node 1.5"),
        ("\t1.5\t0\t3\t", "\t0\t0\t3\t", "capacity must be > 0, got 0"),
        ("\t1.5\t0\t3\t", "\t-2\t0\t3\t", "capacity must be > 0, got -2"),
        (
            "\t1\t3\t25900.20064\t6\t6\t0.15\t4\t0\t0\t1\t;",
            "\t1\t3\t25900\t6\t6\t;",
            "expected at least 7 columns, got 5",
        ),
        ("\t6\t6\t0.15\t", "\t6\tnan\t0.15\t", "non-finite number"),
    ],
)
def test_malformed_network_rows_name_file_and_line(tmp_path, old, new, problem):
    text, number = _replace_line(NET_TEXT, old, new)
    net, trips = _write(tmp_path, text)
    with pytest.raises(ValueError, match=re.escape(f"{net}:{number}: ") + problem):
        read_tntp(net, trips)


def test_missing_header_column_names_file_and_line(tmp_path):
    text = NET_TEXT.replace("\tPower\t", "\t")
    lines = text.split("\n")
    number = lines.index(HEADER.replace("\tPower\t", "\t")) + 1
    net, trips = _write(tmp_path, text)
    with pytest.raises(ValueError, match=re.escape(f"{net}:{number}: header has no column 'power'")):
        read_tntp(net, trips)


@pytest.mark.parametrize(
    "old, new, line, problem",
    [
        ("<END OF METADATA>", "", 10, "expected a metadata line '<NAME> value' or <END OF METADATA>"),
        ("<NUMBER OF NODES> 4", "", None, "missing metadata <NUMBER OF NODES>"),
        ("<NUMBER OF LINKS> 5", "", None, "missing metadata <NUMBER OF LINKS>"),
        (
            "<NUMBER OF NODES> 4",
            "<NUMBER OF NODES> four",
            2,
            "metadata <NUMBER OF NODES> must be an integer, got 'four'",
        ),
        (
            "<NUMBER OF NODES> 4",
            "<NUMBER OF NODES> inf",
            2,
            "metadata <NUMBER OF NODES> must be an integer, got 'inf'",
        ),
        (
            "<NUMBER OF NODES> 4",
            "<NUMBER OF NODES> 4.5",
            2,
            "metadata <NUMBER OF NODES> must be an integer, got '4.5'",
        ),
        ("<NUMBER OF NODES> 4", "<NUMBER OF NODES> 0", 2, r"metadata <NUMBER OF NODES> must be in \[1, "),
        ("<NUMBER OF ZONES> 2", "<NUMBER OF ZONES> inf", 1, "metadata <NUMBER OF ZONES> must be an integer"),
        ("<NUMBER OF ZONES> 2", "<NUMBER OF ZONES> 5", 1, r"metadata <NUMBER OF ZONES> must be in \[1, 4\]"),
        ("<NUMBER OF LINKS> 5", "<NUMBER OF LINKS> nan", 4, "metadata <NUMBER OF LINKS> must be an integer"),
        ("<NUMBER OF LINKS> 5", "<NUMBER OF LINKS> 6", 4, "<NUMBER OF LINKS> is 6 but 5 links were read"),
        ("<NUMBER OF LINKS> 5", "<NUMBER OF LINKS> 4", 4, "<NUMBER OF LINKS> is 4 but 5 links were read"),
        (
            "<FIRST THRU NODE> 1",
            "<FIRST THRU NODE> 1e400",
            3,
            "metadata <FIRST THRU NODE> must be an integer",
        ),
        (
            "<NUMBER OF ZONES> 2",
            "<NUMBER OF ZONES> 2\n<NUMBER OF ZONES> 3",
            2,
            "metadata <NUMBER OF ZONES> given twice",
        ),
        ("\t1\t3\t25900.20064\t", "\t1\t1\t25900.20064\t", None, "self-loop"),
        (
            "\t1\t4\t100\t2\t2.5\t1\t1\t",
            "\t1\t4\t100\t2\t2.5\t1\t0.5\t",
            12,
            "power must be 0 or >= 1, got 0.5",
        ),
        ("\t1\t4\t100\t2\t2.5\t1\t1\t", "\t1\t4\t100\t2\t2.5\t-1\t1\t", 12, "b must be >= 0, got -1"),
        ("\t1\t4\t100\t2\t2.5\t1\t1\t", "\t1\t4\t100\t-2\t2.5\t1\t1\t", 12, "length must be >= 0, got -2"),
        (
            "\t1\t4\t100\t2\t2.5\t1\t1\t0\t0\t",
            "\t1\t4\t100\t2\t2.5\t1\t1\t0\tfree\t",
            12,
            "malformed number 'free' in column 'toll'",
        ),
    ],
)
def test_malformed_network_files_name_the_file(tmp_path, old, new, line, problem):
    assert old in NET_TEXT
    net, trips = _write(tmp_path, NET_TEXT.replace(old, new, 1))
    where = f"{net}: " if line is None else f"{net}:{line}: "
    with pytest.raises(ValueError, match=re.escape(where) + ".*" + problem):
        read_tntp(net, trips)


@pytest.mark.parametrize(
    "old, new, problem",
    [
        ("Origin  2", "Origin  x", "bad origin line 'Origin  x'"),
        ("Origin  2", "Origin  3", r"bad origin line 'Origin  3' \(zones are 1\.\.2\)"),
        ("Origin  2", "Origin  2 3", "bad origin line"),
        ("2 :    300.0", "3 :    300.0", "unknown destination zone 3"),
        ("1 :     50.5", "1 :    -50.5", "malformed entry '1 :    -50.5'"),
        ("1 :     50.5", "1 :     abc", "malformed entry"),
        ("1 :     50.5", "1       50.5", "malformed entry"),
    ],
)
def test_malformed_trips_entries_name_file_and_line(tmp_path, old, new, problem):
    text, number = _replace_line(TRIPS_TEXT, old, new)
    net, trips = _write(tmp_path, trips_text=text)
    with pytest.raises(ValueError, match=re.escape(f"{trips}:{number}: ") + problem):
        read_tntp(net, trips)


def test_trips_entries_before_any_origin_line(tmp_path):
    text = TRIPS_TEXT.replace("\n\nOrigin  1", "\n    2 :  100.0;\nOrigin  1", 1)
    number = text.split("\n").index("    2 :  100.0;") + 1
    net, trips = _write(tmp_path, trips_text=text)
    with pytest.raises(
        ValueError, match=re.escape(f"{trips}:{number}: demand entries before any 'Origin' line")
    ):
        read_tntp(net, trips)


@pytest.mark.parametrize(
    "old, new, line, problem",
    [
        (
            "<TOTAL OD FLOW> 350.5",
            "<TOTAL OD FLOW> 351",
            2,
            r"<TOTAL OD FLOW> is 351 but the entries sum to 350.5 \(intrazonal 0 included\)",
        ),
        ("<TOTAL OD FLOW> 350.5", "<TOTAL OD FLOW> lots", 2, "<TOTAL OD FLOW> is not a number: 'lots'"),
        (
            "<TOTAL OD FLOW> 350.5",
            "<TOTAL OD FLOW> nan",
            2,
            "<TOTAL OD FLOW> must be finite and >= 0, got 'nan'",
        ),
        (
            "<TOTAL OD FLOW> 350.5",
            "<TOTAL OD FLOW> inf",
            2,
            "<TOTAL OD FLOW> must be finite and >= 0, got 'inf'",
        ),
        ("<TOTAL OD FLOW> 350.5", "<TOTAL OD FLOW> -350.5", 2, "<TOTAL OD FLOW> must be finite and >= 0"),
        ("<NUMBER OF ZONES> 2", "", None, "missing metadata <NUMBER OF ZONES>"),
        ("<NUMBER OF ZONES> 2", "<NUMBER OF ZONES> 2.5", 1, "metadata <NUMBER OF ZONES> must be an integer"),
        ("<NUMBER OF ZONES> 2", "<NUMBER OF ZONES> 5", None, "5 zones but the network has only 4 nodes"),
        ("<END OF METADATA>", "", 6, "expected a metadata line"),
    ],
)
def test_malformed_trips_files_name_the_file(tmp_path, old, new, line, problem):
    assert old in TRIPS_TEXT
    net, trips = _write(tmp_path, trips_text=TRIPS_TEXT.replace(old, new))
    where = f"{trips}: " if line is None else f"{trips}:{line}: "
    with pytest.raises(ValueError, match=re.escape(where) + problem):
        read_tntp(net, trips)


def test_trips_without_positive_demand(tmp_path):
    text = "<NUMBER OF ZONES> 2\n<END OF METADATA>\nOrigin 1\n 1 : 0.0; 2 : 0.0;\nOrigin 2\n 2 : 7.0;\n"
    net, trips = _write(tmp_path, trips_text=text)
    with pytest.raises(ValueError, match=re.escape(f"{trips}: no positive demand")):  # diagonal is dropped
        read_tntp(net, trips)


def test_trips_total_within_relative_tolerance_and_duplicates_add_up(tmp_path):
    text = TRIPS_TEXT.replace("<TOTAL OD FLOW> 350.5", "<TOTAL OD FLOW> 450.5000001").replace(
        "2 :    300.0;", "2 :    300.0; 2 : 100.0;"
    )
    network = read_tntp(*_write(tmp_path, trips_text=text))
    np.testing.assert_array_equal(network.demand, [400.0, 50.5])


def test_network_file_without_links_names_the_file(tmp_path):
    net, trips = _write(tmp_path, "<NUMBER OF NODES> 4\n<NUMBER OF LINKS> 0\n<END OF METADATA>\n")
    with pytest.raises(ValueError, match=re.escape(str(net))):
        read_tntp(net, trips)


# -- network validation -----------------------------------------------------------------

GOOD = dict(
    n_nodes=3,
    init_node=[0, 1],
    term_node=[1, 2],
    free_flow_time=[1.0, 2.0],
    capacity=[1.0, 1.0],
    delay=[0.15, 0.3],
    power=[4.0, 4.0],
    origins=[0],
    destinations=[2],
    demand=[1.0],
)


def test_network_accepts_good_input_and_freezes_arrays():
    network = Network(**GOOD)
    assert network.n_links == 2 and network.n_od == 1 and network.total_demand == 1.0
    with pytest.raises(ValueError):
        network.capacity[0] = 5.0
    with pytest.raises(ValueError):
        network.init_node[0] = 2
    np.testing.assert_array_equal(network.demand_matrix(), [[0, 0, 1], [0, 0, 0], [0, 0, 0]])
    flow = np.array([2.0, 0.5])
    np.testing.assert_allclose(network.link_cost(flow), [1 + 0.15 * 16, 2 + 0.3 / 16])
    np.testing.assert_allclose(network.link_cost_derivative(flow), [0.15 * 4 * 8, 0.3 * 4 * 0.125])
    np.testing.assert_allclose(network.link_cost_integral(flow), [2 + 0.15 * 32 / 5, 1 + 0.3 * 0.5**5 / 5])


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"term_node": [1, 1]}, "link 1 is a self-loop at node 1"),
        ({"capacity": [1.0, 0.0]}, r"capacity\[1\] must be > 0.0"),
        ({"capacity": [-1.0, 1.0]}, r"capacity\[0\] must be > 0.0"),
        ({"power": [0.5, 4.0]}, r"power\[0\] must be 0 or >= 1 where delay > 0, got 0.5"),
        ({"power": [-1.0, 4.0]}, r"power\[0\] must be >= 0.0"),
        ({"fixed_cost": [-1.0, 0.0]}, r"fixed_cost\[0\] must be >= 0.0"),
        ({"length": [1.0, np.nan]}, "length must be finite"),
        ({"toll": [1.0]}, "toll must have shape"),
        ({"name": 5}, "name must be a string"),
        ({"n_nodes": 10**8}, "n_nodes must be <= 10000000"),
        ({"free_flow_time": [np.nan, 1.0]}, "free_flow_time must be finite"),
        ({"free_flow_time": [-1.0, 1.0]}, r"free_flow_time\[0\] must be >= 0.0"),
        ({"delay": [0.0, np.inf]}, "delay must be finite"),
        ({"demand": [0.0]}, r"demand\[0\] must be > 0"),
        ({"demand": [-2.0]}, r"demand\[0\] must be > 0"),
        ({"destinations": [0]}, "OD pair 0 has origin == destination == 0"),
        ({"origins": [0, 0], "destinations": [2, 2], "demand": [1.0, 2.0]}, "OD pairs must be distinct"),
        ({"term_node": [1, 3]}, r"term_node\[1\] = 3 is not a node in \[0, 3\)"),
        ({"init_node": [-1, 1]}, r"init_node\[0\] = -1 is not a node"),
        ({"origins": [5]}, r"origins\[0\] = 5 is not a node"),
        ({"init_node": [0.5, 1]}, "integer node indices"),
        ({"term_node": [1, 2, 0]}, "term_node must be 1-D of shape"),
        ({"capacity": [1.0]}, "capacity must have shape"),
        (
            {
                "init_node": [],
                "term_node": [],
                "free_flow_time": [],
                "capacity": [],
                "delay": [],
                "power": [],
            },
            "at least one link",
        ),
        ({"origins": [], "destinations": [], "demand": []}, "at least one OD pair"),
        ({"n_nodes": 0}, "n_nodes must be a positive integer"),
    ],
)
def test_network_rejects_bad_input(changes, match):
    with pytest.raises(ValueError, match=match):
        Network(**{**GOOD, **changes})


def test_network_rejects_first_thru_node_out_of_range():
    with pytest.raises(ValueError, match="first_thru_node"):
        Network(**GOOD, first_thru_node=4)


@pytest.mark.parametrize(
    "links, demand, match",
    [
        ([(0, 0, 1, 1, 0, 1)], {(0, 1): 1.0}, "self-loop"),
        ([(0, 1, 1, 0, 0, 1)], {(0, 1): 1.0}, "capacity"),
        ([(0, 1, 1, 1, 0.5, 0.9)], {(0, 1): 1.0}, "power"),
        ([(0, 1, np.nan, 1, 0, 1)], {(0, 1): 1.0}, "links must be finite"),
        ([(0, 1, 1, 1, 0, 1)], {(0, 1): -1.0}, "demand"),
        ([(0, 1, 1, 1, 0, 1)], {(0, 1): 0.0}, "at least one OD pair"),  # zero demands are dropped
        ([(0, 1, 1, 1, 0, 1)], {(1, 1): 1.0}, "origin == destination"),
        ([(0, 2, 1, 1, 0, 1)], {(0, 1): 1.0}, "not a node"),
        ([(0, 1, 1, 1, 0, 1)], {(0, 2): 1.0}, "not a node"),
        ([(0, 1, 1, 1, 0)], {(0, 1): 1.0}, "rows of 6 numbers"),
    ],
)
def test_network_from_links_rejects_bad_input(links, demand, match):
    with pytest.raises(ValueError, match=match):
        network_from_links(2, links, demand, "bad")


# -- Sioux Falls ------------------------------------------------------------------------


@requires_sioux_falls
def test_sioux_falls_from_aequilibrae(sf):
    assert (sf.n_nodes, sf.n_links, sf.n_od) == (24, 76, 528)
    assert sf.total_demand == pytest.approx(360_600, rel=1e-12)
    assert content_digest(sf) == SIOUX_FALLS_DIGEST
    assert (sf.init_node[0], sf.term_node[0]) == (0, 1)
    assert sf.capacity[0] == pytest.approx(25900.20064, rel=1e-12)
    assert sf.free_flow_time[0] == 6.0 and sf.power[0] == 4.0
    assert sf.delay[0] == pytest.approx(0.9, rel=1e-12)
    assert np.all(sf.power == 4.0) and np.allclose(sf.delay, 0.15 * sf.free_flow_time)
    assert sioux_falls("auto").n_links == 76


def test_sioux_falls_rejects_unknown_source():
    with pytest.raises(ValueError, match="source must be"):
        sioux_falls(source="bogus")


# -- downloads --------------------------------------------------------------------------


@contextlib.contextmanager
def _serve(directory: Path, requests: list):
    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(directory))
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def no_proxy(monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


FILES = ("g_net.tntp", "g_trips.tntp", "g_flow.tntp")


@pytest.fixture
def served_grid(tmp_path, monkeypatch):
    """A grid network's TNTP files in ``served/Grid/`` registered as collection entry ``"Grid"``
    (digests of the written bytes), and that network."""
    network = grid(3, 3, seed=4)
    served = tmp_path / "served"
    write_tntp(network, served / "Grid" / FILES[0], served / "Grid" / FILES[1])
    flow = user_equilibrium(network, relative_gap=1e-10).link_flow
    lines = ["From\tTo\tVolume\tCost"] + [
        f"{network.init_node[e] + 1}\t{network.term_node[e] + 1}\t{float(flow[e])!r}\t0"
        for e in range(network.n_links)
    ]
    (served / "Grid" / FILES[2]).write_text("\n".join(lines) + "\n")
    digests = {file: hashlib.sha256((served / "Grid" / file).read_bytes()).hexdigest() for file in FILES}
    monkeypatch.setitem(TNTP_NETWORKS, "Grid", TntpNetworkFiles("Grid", *FILES, digests))
    return served, network, flow


def test_tntp_network_downloads_checks_and_uses_the_cache(tmp_path, no_proxy, served_grid):
    served, network, flow = served_grid
    cache = tmp_path / "cache"
    requests = []
    with _serve(served, requests) as url:
        first = tntp_network("Grid", directory=cache, base_url=url)
    assert sorted(requests) == ["/Grid/g_net.tntp", "/Grid/g_trips.tntp"]
    _assert_same_network(first, network)
    assert first.name == "Grid"
    assert all((cache / file).exists() for file in FILES[:2])
    # the server is gone: the cached copy is read without a request
    second = tntp_network("Grid", directory=cache, base_url=url, download=False)
    _assert_same_network(second, network)
    assert len(requests) == 2
    with _serve(served, requests) as url:
        best = tntp_best_known_flow("Grid", directory=cache, base_url=url)
    assert requests[2:] == ["/Grid/g_flow.tntp"]
    np.testing.assert_array_equal(best, flow)


def test_the_cache_directory_comes_from_the_environment(tmp_path, no_proxy, served_grid, monkeypatch):
    served, network, _ = served_grid
    monkeypatch.setenv("INCENTIVE_ENVS_CACHE", str(tmp_path / "elsewhere"))
    assert cache_dir() == tmp_path / "elsewhere"
    with _serve(served, []) as url:
        tntp_network("Grid", base_url=url)
    assert (tmp_path / "elsewhere" / "tntp" / "Grid" / "g_net.tntp").exists()


def test_a_download_with_the_wrong_digest_writes_nothing(tmp_path, no_proxy, served_grid):
    served, _, _ = served_grid
    (served / "Grid" / "g_trips.tntp").write_text(
        (served / "Grid" / "g_trips.tntp").read_text().replace("Origin", "Origin ")
    )
    cache = tmp_path / "cache"
    with _serve(served, []) as url:
        with pytest.raises(
            ValueError, match=r"g_trips.tntp has SHA-256 [0-9a-f]{64}, expected [0-9a-f]{64}; nothing"
        ):
            tntp_network("Grid", directory=cache, base_url=url)
    assert sorted(path.name for path in cache.iterdir()) == ["g_net.tntp"]  # no partial or temporary files


def test_a_stale_cached_copy_is_replaced(tmp_path, no_proxy, served_grid):
    served, network, _ = served_grid
    cache = tmp_path / "cache"
    write_tntp(grid(3, 3, seed=5), cache / FILES[0], cache / FILES[1])
    requests = []
    with _serve(served, requests) as url:
        result = tntp_network("Grid", directory=cache, base_url=url)
    assert len(requests) == 2
    _assert_same_network(result, network)
    with pytest.raises(FileNotFoundError, match="has the wrong SHA-256 digest and download=False"):
        write_tntp(grid(3, 3, seed=5), cache / FILES[0], cache / FILES[1])
        tntp_network("Grid", directory=cache, download=False)


def test_tntp_network_without_files_or_download(tmp_path, served_grid):
    with pytest.raises(FileNotFoundError, match="g_net.tntp is missing and download=False"):
        tntp_network("Grid", directory=tmp_path / "empty", download=False)
    assert not (tmp_path / "empty").exists()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"name": "sioux_falls"}, r"name must be one of \['SiouxFalls', 'Anaheim', 'Chicago-Sketch'"),
        ({"name": "SiouxFalls", "toll_weight": -1.0}, "toll_weight must be >= 0"),
        ({"name": "SiouxFalls", "distance_weight": "0.04"}, "distance_weight must be a real number"),
        ({"name": "SiouxFalls", "download": "no"}, "download must be True or False"),
        ({"name": "SiouxFalls", "timeout": 0}, "timeout must be > 0"),
        ({"name": "SiouxFalls", "base_url": None}, "base_url must be a string"),
    ],
)
def test_tntp_network_rejects_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        tntp_network(**{"directory": tmp_path, **kwargs})


# -- link-based assignment: closed forms ------------------------------------------------


def test_pigou_user_equilibrium_and_system_optimum():
    ue = user_equilibrium(pigou())
    np.testing.assert_allclose(ue.link_flow, [0.0, 1.0], atol=1e-12)
    assert ue.tstt == pytest.approx(1.0, abs=1e-12) and ue.converged
    np.testing.assert_allclose(ue.link_cost, [1.0, 1.0], atol=1e-12)
    assert ue.beckmann == pytest.approx(0.5, abs=1e-12)  # ∫_0^1 s ds
    so = user_equilibrium(pigou(), system_optimal=True)
    np.testing.assert_allclose(so.link_flow, [0.5, 0.5], atol=1e-9)
    assert so.tstt == pytest.approx(0.75, abs=1e-12)


@given(st.floats(1.0, 6.0), st.floats(0.2, 3.0))
@settings(max_examples=25, deadline=None)
def test_pigou_system_optimum_with_power(power, demand):
    so = user_equilibrium(pigou(demand=demand, power=power), system_optimal=True, relative_gap=1e-12)
    # marginal cost of link 2, (1 + p) x^p, equals 1 while that flow fits in the demand
    expected = min(demand, (1.0 + power) ** (-1.0 / power))
    assert so.link_flow[1] == pytest.approx(expected, rel=1e-6)
    assert so.link_flow.sum() == pytest.approx(demand, rel=1e-12)
    ue = user_equilibrium(pigou(demand=demand, power=power), relative_gap=1e-12)
    assert ue.link_flow[1] == pytest.approx(min(demand, 1.0), rel=1e-6)


def test_braess_paradox():
    ue = user_equilibrium(braess())
    np.testing.assert_allclose(ue.link_flow, [4, 2, 2, 4, 2], atol=1e-9)
    path_costs = [ue.link_cost[[0, 1]].sum(), ue.link_cost[[2, 3]].sum(), ue.link_cost[[0, 4, 3]].sum()]
    np.testing.assert_allclose(path_costs, [92, 92, 92], atol=1e-9)
    assert ue.tstt == pytest.approx(552, rel=1e-12)
    without = user_equilibrium(braess(bridge=False))
    np.testing.assert_allclose(without.link_flow, [3, 3, 3, 3], atol=1e-9)
    assert without.tstt == pytest.approx(498, rel=1e-12)
    assert ue.tstt > without.tstt
    so = user_equilibrium(braess(), system_optimal=True)
    assert so.tstt == pytest.approx(498, rel=1e-12)
    np.testing.assert_allclose(so.link_flow, [3, 3, 3, 3, 0], atol=1e-9)
    assert braess(demand=2.0).total_demand == 2.0


@pytest.mark.parametrize("toll", [0.0, 1.0, 3.25, 6.5, 12.0, 12.99, 13.0, 13.01, 20.0, 1e3])
def test_tolled_braess_closed_form(toll):
    """With bridge toll π, symmetric UE flows f on s-a-t and s-b-t and 6 − 2f on the bridge
    path: 10(6 − f) + f + 50 = 10(6 − f)·2 + (6 − 2f) + 10 + π gives f = 2 + π/13, so the
    bridge carries 2 − 2π/13 > 0 iff π < 13 (at the no-bridge UE the bridge path costs
    70 + π against 83)."""
    tolls = np.zeros(5)
    tolls[BRAESS_BRIDGE_LINK] = toll
    ue = user_equilibrium(braess(), tolls, relative_gap=1e-12)
    f = min(2.0 + toll / 13.0, 3.0)
    bridge = 6.0 - 2.0 * f
    np.testing.assert_allclose(ue.link_flow, [6 - f, f, f, 6 - f, bridge], atol=1e-9)
    cost = 10.0 * (6.0 - f) + f + 50.0  # of each of the two outer paths
    assert ue.tstt == pytest.approx(6.0 * cost - toll * bridge, rel=1e-10)  # tolls are transfers
    assert ue.relative_gap <= 1e-12
    if toll >= 13.0:
        np.testing.assert_allclose(
            ue.link_flow[:4], user_equilibrium(braess(bridge=False)).link_flow, atol=1e-9
        )
        assert ue.tstt == pytest.approx(498, rel=1e-10)


@pytest.mark.parametrize("gap", [1e-4, 1e-7, 1e-10])
def test_relative_gap_is_reached_and_reported(gap):
    network = grid(3, 3)
    result = user_equilibrium(network, relative_gap=gap)
    assert result.converged and 0 <= result.relative_gap <= gap
    # recompute the gap independently: Σ c x − Σ d κ over Σ c x with κ from brute-force paths
    kappa = [
        min(result.link_cost[list(path)].sum() for path in _simple_paths(network, o, d))
        for o, d in zip(network.origins, network.destinations)
    ]
    total = result.link_cost @ result.link_flow
    assert (total - network.demand @ kappa) / total == pytest.approx(result.relative_gap, rel=1e-6, abs=1e-13)
    assert result.beckmann == pytest.approx(network.link_cost_integral(result.link_flow).sum(), rel=1e-14)


def _recomputed_gap(network, result):
    _, kappa = ShortestPathGraph(network).all_or_nothing(result.link_cost)
    total = result.link_cost @ result.link_flow
    return (total - network.demand @ kappa) / total


def test_not_converged_is_reported():
    with pytest.warns(ConvergenceWarning, match="stopped after 3 iterations"):
        result = user_equilibrium(grid(3, 3), relative_gap=1e-12, max_iterations=3)
    assert not result.converged and result.iterations == 3 and result.relative_gap > 1e-12


def test_reported_gap_describes_the_returned_flow_when_not_converged():
    network = grid(3, 3)
    with pytest.warns(ConvergenceWarning):
        result = user_equilibrium(network, relative_gap=1e-12, max_iterations=3)
    assert result.relative_gap == pytest.approx(_recomputed_gap(network, result), rel=1e-9)


@pytest.mark.parametrize(
    "method",
    [
        "fw",
        "bfw",
        "cfw",
    ],
)
def test_every_frank_wolfe_variant_makes_progress(method):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # plain Frank–Wolfe stops short of 1e-9
        result = user_equilibrium(grid(3, 3), relative_gap=1e-9, method=method, max_iterations=500)
    assert result.relative_gap < 1e-3


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"tolls": -np.ones(5)}, "tolls must be >= 0"),
        ({"tolls": np.ones(4)}, "tolls must have shape"),
        ({"tolls": np.array([0, 0, 0, 0, np.nan])}, "tolls must be finite"),
        ({"method": "msa"}, "method must be"),
        ({"on_unconverged": "quiet"}, "on_unconverged must be one of"),
        ({"graph": ShortestPathGraph(pigou())}, "graph must be built on the same network"),
        ({"tolls": np.ones(5), "system_optimal": True}, "tolls are transfers"),
        ({"relative_gap": 0.0}, "relative_gap"),
        ({"max_iterations": 0}, "max_iterations"),
    ],
)
def test_user_equilibrium_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        user_equilibrium(braess(), **kwargs)


def test_zero_tolls_are_allowed_with_system_optimal():
    so = user_equilibrium(braess(), np.zeros(5), system_optimal=True)
    assert so.tstt == pytest.approx(498, rel=1e-12)


def test_paths_never_pass_through_zones():
    links = [(0, 1, 1, 1, 0, 1), (1, 3, 1, 1, 0, 1), (0, 2, 5, 1, 0, 1), (2, 3, 5, 1, 0, 1)]
    through = network_from_links(4, links, {(0, 3): 1.0}, "z")
    zoned = network_from_links(4, links, {(0, 3): 1.0}, "z", first_thru_node=2)
    np.testing.assert_allclose(user_equilibrium(through).link_flow, [1, 1, 0, 0])
    np.testing.assert_allclose(user_equilibrium(zoned).link_flow, [0, 0, 1, 1])
    assert k_shortest_paths(through, 5).links == ((0, 1), (2, 3))
    assert k_shortest_paths(zoned, 5).links == ((2, 3),)


def _node_balance(network: Network, flow: np.ndarray) -> np.ndarray:
    """out − in − (supply − demand) at every node."""
    balance = np.bincount(network.init_node, flow, network.n_nodes) - np.bincount(
        network.term_node, flow, network.n_nodes
    )
    supply = np.bincount(network.origins, network.demand, network.n_nodes)
    sink = np.bincount(network.destinations, network.demand, network.n_nodes)
    return balance - (supply - sink)


@requires_sioux_falls
def test_sioux_falls_user_equilibrium_matches_the_published_values(sf, sf_ue):
    assert sf_ue.converged and sf_ue.relative_gap <= 1e-7
    assert sf_ue.beckmann == pytest.approx(4_231_335.287, rel=1e-5)
    assert sf_ue.tstt == pytest.approx(7_480_225.34, rel=1e-5)
    assert np.max(np.abs(_node_balance(sf, sf_ue.link_flow))) <= 1e-8 * sf.total_demand
    assert np.all(sf_ue.link_flow >= 0)
    np.testing.assert_allclose(sf_ue.link_cost, sf.link_cost(sf_ue.link_flow))
    assert sf_ue.tstt == pytest.approx(sf_ue.link_cost @ sf_ue.link_flow, rel=1e-14)


@pytest.mark.parametrize("make", [braess, lambda: grid(3, 3), lambda: grid(2, 4, seed=3)])
def test_flow_conservation_of_ue_and_so(make):
    network = make()
    for result in (user_equilibrium(network), user_equilibrium(network, system_optimal=True)):
        assert np.max(np.abs(_node_balance(network, result.link_flow))) <= 1e-10 * network.total_demand


# -- k shortest paths -------------------------------------------------------------------


def test_k_shortest_paths_on_braess_and_pigou():
    paths = k_shortest_paths(braess(), 3)
    assert paths.links == ((0, 4, 3), (0, 1), (2, 3))  # free-flow 10, 50, 50 (ties lexicographic)
    assert paths.sizes == (3,) and paths.n_paths == 3
    np.testing.assert_array_equal(paths.od, [0, 0, 0])
    np.testing.assert_array_equal(
        paths.incidence.toarray(), [[1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 0, 0]]
    )
    assert k_shortest_paths(braess(), 1).links == ((0, 4, 3),)
    assert k_shortest_paths(braess(), 10).links == paths.links  # more than exist: all of them
    assert k_shortest_paths(pigou(), 3).links == ((1,), (0,))  # parallel links are distinct paths
    # a custom weight reorders
    assert k_shortest_paths(braess(), 3, weight=np.array([1.0, 1.0, 1.0, 1.0, 5.0])).links[2] == (0, 4, 3)


@pytest.mark.parametrize("make", [lambda: grid(2, 2), lambda: grid(2, 3), lambda: grid(3, 3), braess])
@pytest.mark.parametrize("k", [1, 2, 3, 5, 12, 100])
def test_k_shortest_paths_against_brute_force(make, k):
    network = make()
    paths = k_shortest_paths(network, k)
    assert paths.n_paths == sum(paths.sizes) == len(paths.od)
    for i, (o, d) in enumerate(zip(network.origins, network.destinations)):
        every = _simple_paths(network, int(o), int(d))
        mine = _od_paths(paths, i)
        assert len(mine) == min(k, len(every))
        assert len(set(mine)) == len(mine) and set(mine) <= every
        lengths = [network.free_flow_time[list(path)].sum() for path in mine]
        assert lengths == sorted(lengths)
        shortest = sorted(network.free_flow_time[list(path)].sum() for path in every)[: len(mine)]
        np.testing.assert_allclose(lengths, shortest, rtol=1e-12)


def test_path_counts_on_small_grids():
    """2x2 grid (a 4-cycle): two loopless paths between any two corners. 3x3 grid: 12 between
    opposite corners, 11 between adjacent ones (counted by brute force)."""
    assert k_shortest_paths(grid(2, 2), 10).sizes == (2,) * 12
    network = grid(3, 3)
    counts = [
        len(_simple_paths(network, int(o), int(d))) for o, d in zip(network.origins, network.destinations)
    ]
    opposite = [
        {int(o), int(d)} == {0, 8} or {int(o), int(d)} == {2, 6}
        for o, d in zip(network.origins, network.destinations)
    ]
    assert counts == [12 if flag else 11 for flag in opposite]
    assert k_shortest_paths(network, 50).sizes == tuple(counts)
    assert k_shortest_paths(network, 11).sizes == (11,) * 12


@requires_sioux_falls
def test_sioux_falls_paths_are_loopless_and_connect_their_od(sf):
    paths = k_shortest_paths(sf, 3)
    assert paths.sizes == (3,) * 528
    for path, i in zip(paths.links, paths.od):
        nodes = [int(sf.init_node[path[0]])] + [int(sf.term_node[e]) for e in path]
        assert nodes[0] == sf.origins[i] and nodes[-1] == sf.destinations[i]
        assert all(sf.init_node[e] == a for e, a in zip(path, nodes))
        assert len(set(nodes)) == len(nodes)
    dense = paths.incidence.toarray()
    for p, path in enumerate(paths.links[:50]):
        np.testing.assert_array_equal(np.flatnonzero(dense[:, p]), sorted(path))


def _link(network, tail, head):
    return int(np.flatnonzero((network.init_node == tail) & (network.term_node == head))[0])


def test_path_set_from_paths_validates():
    network = grid(2, 2)  # nodes 0 1 / 2 3; OD 0 is 0 -> 1
    assert (network.origins[0], network.destinations[0]) == (0, 1)
    others = [list(_od_paths(k_shortest_paths(network, 2), i)) for i in range(network.n_od)]
    direct, up, right = _link(network, 0, 1), _link(network, 0, 2), _link(network, 2, 3)
    good = PathSet.from_paths(network, [[(direct,), (up, right, _link(network, 3, 1))], *others[1:]])
    assert good.sizes[0] == 2
    cases = [
        ([(up, _link(network, 3, 1))], "not connected at link"),
        ([(direct, _link(network, 1, 0), direct)], "has a loop at node 0"),
        ([(up, right)], "does not end at its destination"),
        ([(99,)], "unknown links"),
        ([()], "unknown links"),
        ([], "OD pair 0 has no path"),
    ]
    for first, match in cases:
        with pytest.raises(ValueError, match=match):
            PathSet.from_paths(network, [first, *others[1:]])
    with pytest.raises(ValueError, match="need paths for 12 OD pairs"):
        PathSet.from_paths(network, others[1:])


def test_k_shortest_paths_rejects_bad_input():
    with pytest.raises(ValueError, match="k must be a positive integer"):
        k_shortest_paths(braess(), 0)
    with pytest.raises(ValueError, match="weight must be non-negative"):
        k_shortest_paths(braess(), 2, weight=-np.ones(5))
    disconnected = network_from_links(3, [(0, 1, 1, 1, 0, 1)], {(0, 2): 1.0}, "d")
    with pytest.raises(ValueError, match="not connected"):
        k_shortest_paths(disconnected, 2)


# -- the logit routing game ---------------------------------------------------------------


def _softmax_check(game: RoutingGame, q: np.ndarray, theta: np.ndarray) -> float:
    """max |q − softmax(−C/η)| with path costs C summed here from the links."""
    network = game.network
    flow = np.zeros(network.n_links)
    for share, path, od in zip(q, game.paths.links, game.paths.od):
        flow[list(path)] += network.demand[od] * share
    tolls = np.zeros(network.n_links)
    tolls[game.tolled_links] = theta
    cost = np.array([(network.link_cost(flow) + tolls)[list(path)].sum() for path in game.paths.links])
    worst = 0.0
    for i in range(network.n_od):
        block = game.paths.od == i
        weights = np.exp(-(cost[block] - cost[block].min()) / game.eta)
        worst = max(worst, float(np.max(np.abs(q[block] - weights / weights.sum()))))
    return worst


@pytest.mark.parametrize(
    "make",
    [
        lambda: RoutingGame(braess(), 1.0),
        lambda: RoutingGame(braess(), 0.05, paths_per_od=5),
        lambda: RoutingGame(grid(3, 3), 1.0, paths_per_od=4),
        lambda: RoutingGame(grid(3, 3), 0.1, paths_per_od=4),
    ],
)
@pytest.mark.parametrize("seed", [None, 0, 1])
def test_logit_equilibrium_fixed_point(make, seed):
    game = make()
    theta = (
        np.zeros(game.incentive_set.dim)
        if seed is None
        else np.random.default_rng(seed).uniform(0.0, 10.0, game.incentive_set.dim)
    )
    q = game.equilibrium(theta)
    assert game.strategy_set.contains(q, atol=1e-12) and np.all(q > 0)
    assert game.equilibrium_residual(q, theta) <= 1e-10
    assert _softmax_check(game, q, theta) <= 1e-10


@pytest.mark.parametrize("seed", [None, 3])
def test_sioux_falls_logit_equilibrium(sf_game, seed):
    theta = np.zeros(20) if seed is None else np.random.default_rng(seed).uniform(0.0, 10.0, 20)
    q = sf_game.equilibrium(theta)
    assert sf_game.equilibrium_residual(q, theta) <= 1e-10
    assert _softmax_check(sf_game, q, theta) <= 1e-10
    assert np.max(np.abs(_node_balance_of_game(sf_game, q))) <= 1e-9 * sf_game.network.total_demand


def _node_balance_of_game(game, q):
    return _node_balance(game.network, game.link_flow(q))


def test_braess_logit_equilibrium_is_the_ue_at_zero_tolls():
    # at q = 1/3 every path costs 92, so the uniform split is the logit equilibrium for every η
    for eta in (10.0, 1.0, 1e-3):
        game = RoutingGame(braess(), eta)
        np.testing.assert_allclose(game.link_flow(game.equilibrium(np.zeros(5))), [4, 2, 2, 4, 2], atol=1e-9)


def test_logit_flows_approach_the_user_equilibrium_as_eta_vanishes():
    network = grid(3, 3)
    paths = k_shortest_paths(network, 50)  # every loopless path
    assert paths.sizes == tuple(
        len(_simple_paths(network, int(o), int(d))) for o, d in zip(network.origins, network.destinations)
    )
    ue = user_equilibrium(network, relative_gap=1e-12).link_flow
    errors = []
    for eta in (1.0, 0.1, 0.01, 0.001):
        game = RoutingGame(network, eta, paths=paths)
        q = game.equilibrium(np.zeros(network.n_links))
        assert game.equilibrium_residual(q, np.zeros(network.n_links)) <= 1e-10
        errors.append(np.max(np.abs(game.link_flow(q) - ue)))
    assert all(a > b for a, b in zip(errors, errors[1:])), errors
    assert errors[0] > 0.1 and errors[-1] < 2e-3, errors


def test_tolled_braess_logit_equilibrium_approaches_the_tolled_ue():
    tolls = np.zeros(5)
    tolls[BRAESS_BRIDGE_LINK] = 6.5
    game = RoutingGame(braess(), 1e-3)
    flow = game.link_flow(game.equilibrium(tolls))
    np.testing.assert_allclose(flow, [3.5, 2.5, 2.5, 3.5, 1.0], atol=1e-2)


def test_warm_start_gives_the_same_equilibrium():
    game = RoutingGame(grid(3, 3), 0.5, paths_per_od=4)
    rng = np.random.default_rng(5)
    theta, other = rng.uniform(0, 10, 24), rng.uniform(0, 10, 24)
    cold = game.equilibrium(theta)
    warm = logit_equilibrium(game, theta, start=game.equilibrium(other))
    np.testing.assert_allclose(warm, cold, atol=1e-10)
    assert game.equilibrium_residual(warm, theta) <= 1e-10
    with pytest.raises(ValueError, match="positive entries"):
        logit_equilibrium(game, theta, start=np.zeros(game.strategy_set.dim))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"eta": 0.0}, "eta must be > 0"),
        ({"eta": -1.0}, "eta must be > 0"),
        ({"eta": np.nan}, "eta must be finite"),
        ({"tolled_links": [1, 1]}, "tolled_links must be distinct"),
        ({"tolled_links": [0, 5]}, r"tolled_links must be distinct links in \[0, 5\)"),
        ({"tolled_links": [-1]}, "tolled_links must be distinct"),
        ({"tolled_links": []}, "non-empty"),
        ({"tolled_links": [0.5]}, "link indices"),
        ({"toll_bounds": (-1.0, 5.0)}, r"toll_bounds\[0\] must be >= 0"),
        ({"toll_bounds": (5.0, 1.0)}, r"toll_bounds must satisfy low <= high"),
        ({"paths_per_od": 0}, "paths_per_od"),
        ({"paths": k_shortest_paths(grid(2, 2), 2)}, "same network"),
    ],
)
def test_routing_game_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RoutingGame(braess(), **kwargs)


def test_routing_game_needs_a_network():
    with pytest.raises(ValueError, match="network must be a Network"):
        RoutingGame("braess")


def test_routing_game_validates_incentives():
    game = RoutingGame(braess(), 1.0, tolled_links=[4], toll_bounds=(1.0, 5.0))
    for bad in (np.array([0.5]), np.array([6.0]), np.array([np.nan]), np.zeros(2)):
        with pytest.raises(ValueError, match="theta"):
            game.equilibrium(bad)


def test_rewards_are_minus_mean_path_costs():
    game = RoutingGame(braess(), 2.0, tolled_links=[1, 4])
    q = np.array([0.2, 0.5, 0.3])
    theta = np.array([1.0, 3.0])
    # flows: s→a carries bridge + s-a-t paths, etc.
    x = 6.0 * np.array([0.2 + 0.5, 0.5, 0.3, 0.2 + 0.3, 0.2])
    t = np.array([10 * x[0], x[1] + 50, x[2] + 50, 10 * x[3], x[4] + 10])
    costs = np.array([t[0] + t[4] + t[3] + 3.0, t[0] + t[1] + 1.0, t[2] + t[3]])
    np.testing.assert_allclose(game.link_flow(q), x)
    np.testing.assert_allclose(game.path_costs(q, theta, entropy=False), costs)
    np.testing.assert_allclose(game.pseudo_gradient(q, theta), -(costs + 2.0 * (np.log(q) + 1.0)))
    np.testing.assert_allclose(game.rewards(q, theta), [-(q @ (costs + 2.0 * (np.log(q) + 1.0)))])
    assert game.social_cost(q, theta) == pytest.approx(x @ t)
    # a path with zero share counts 0 log 0 = 0
    q0 = np.array([0.0, 0.5, 0.5])
    np.testing.assert_allclose(
        game.rewards(q0, theta),
        [-(q0 @ game.path_costs(q0, theta, entropy=False) + 2.0 * (0.5 * np.log(0.5) * 2 + 1))],
    )


# -- Jacobian products and hypergradients -------------------------------------------------


@pytest.mark.parametrize(
    "make", [lambda: RoutingGame(braess(), 1.0), lambda: RoutingGame(grid(3, 3), 0.5, paths_per_od=4)]
)
@pytest.mark.parametrize("seed", [0, 1])
def test_jacobian_products_against_finite_differences(make, seed):
    game = make()
    rng = np.random.default_rng(seed)
    s = game.strategy_set
    q = s.exponentiated(s.uniform_point(), rng.normal(size=s.dim))
    theta = rng.uniform(1.0, 9.0, game.incentive_set.dim)
    h = 1e-6
    jac_x = np.stack(
        [
            (game.pseudo_gradient(q + h * e, theta) - game.pseudo_gradient(q - h * e, theta)) / (2 * h)
            for e in np.eye(s.dim)
        ],
        axis=1,
    )
    jac_theta = np.stack(
        [
            (game.pseudo_gradient(q, theta + e) - game.pseudo_gradient(q, theta - e)) / 2.0
            for e in np.eye(game.incentive_set.dim)
        ],
        axis=1,
    )  # v is affine in θ: unit steps are exact
    tangent, cotangent = rng.normal(size=s.dim), rng.normal(size=s.dim)
    toll_tangent = rng.normal(size=game.incentive_set.dim)
    scale = np.abs(jac_x).max()
    np.testing.assert_allclose(game.jvp_x(q, theta, tangent), jac_x @ tangent, rtol=1e-6, atol=1e-7 * scale)
    np.testing.assert_allclose(
        game.vjp_x(q, theta, cotangent), jac_x.T @ cotangent, rtol=1e-6, atol=1e-7 * scale
    )
    np.testing.assert_allclose(game.jvp_theta(q, theta, toll_tangent), jac_theta @ toll_tangent, atol=1e-10)
    np.testing.assert_allclose(game.vjp_theta(q, theta, cotangent), jac_theta.T @ cotangent, atol=1e-10)
    # adjoint identities
    forward, backward = game.jvp_x(q, theta, tangent), game.vjp_x(q, theta, cotangent)
    bound = 1e-12 * np.linalg.norm(cotangent) * np.linalg.norm(forward) + 1e-12 * np.linalg.norm(
        tangent
    ) * np.linalg.norm(backward)
    assert abs(cotangent @ forward - tangent @ backward) <= bound
    forward, backward = game.jvp_theta(q, theta, toll_tangent), game.vjp_theta(q, theta, cotangent)
    bound = 1e-12 * np.linalg.norm(cotangent) * np.linalg.norm(forward) + 1e-12 * np.linalg.norm(
        toll_tangent
    ) * np.linalg.norm(backward)
    assert abs(cotangent @ forward - toll_tangent @ backward) <= bound
    # the planner's gradient
    grad = np.array(
        [
            (game.social_cost(q + h * e, theta) - game.social_cost(q - h * e, theta)) / (2 * h)
            for e in np.eye(s.dim)
        ]
    )
    np.testing.assert_allclose(game.social_cost_grad_x(q, theta), grad, rtol=1e-6)
    np.testing.assert_array_equal(game.social_cost_grad_theta(q, theta), np.zeros(game.incentive_set.dim))


def _central_difference(game, theta, i, h):
    step = np.zeros_like(theta)
    step[i] = h
    return (game.equilibrium_social_cost(theta + step) - game.equilibrium_social_cost(theta - step)) / (2 * h)


@pytest.mark.parametrize(
    "make",
    [
        lambda: RoutingGame(braess(), 1.0, paths_per_od=5),
        lambda: RoutingGame(grid(3, 3), 0.5, paths_per_od=4),
    ],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_exact_hypergradient_against_finite_differences(make, seed):
    game = make()
    theta = np.random.default_rng(seed).uniform(1.0, 9.0, game.incentive_set.dim)  # interior of [0, 10]
    gradient = exact_hypergradient(game, theta)
    numeric = np.array([_central_difference(game, theta, i, 1e-4) for i in range(theta.size)])
    np.testing.assert_allclose(gradient, numeric, rtol=1e-6, atol=1e-9)
    assert np.abs(gradient).max() > 0.1


def test_braess_hypergradient_sign():
    """Tolling the bridge pushes Braess toward its optimum: TSTT falls as the bridge toll rises."""
    game = RoutingGame(braess(), 1.0, tolled_links=[BRAESS_BRIDGE_LINK], toll_bounds=(0.0, 20.0))
    assert exact_hypergradient(game, np.array([2.0]))[0] < 0
    assert game.equilibrium_social_cost(np.array([12.0])) < game.equilibrium_social_cost(np.array([2.0]))


def test_sioux_falls_hypergradient_against_finite_differences(sf_game):
    theta = np.random.default_rng(7).uniform(1.0, 9.0, 20)
    gradient = exact_hypergradient(sf_game, theta)
    for i in (0, 5, 13):
        assert gradient[i] == pytest.approx(_central_difference(sf_game, theta, i, 1e-4), rel=1e-6)


# -- the path-restricted system optimum -----------------------------------------------------


@pytest.mark.parametrize("eta", [0.1, 1.0, 10.0])
def test_braess_social_optimum(eta):
    game = RoutingGame(braess(), eta)
    optimum = game.social_optimum()
    assert optimum.value == pytest.approx(498, rel=1e-12)
    assert game.strategy_set.contains(optimum.strategy, atol=1e-12)
    assert game.social_cost(optimum.strategy, np.zeros(5)) == pytest.approx(optimum.value, rel=1e-12)
    np.testing.assert_allclose(game.link_flow(optimum.strategy), [3, 3, 3, 3, 0], atol=1e-9)


def test_grid_social_optimum_equals_the_link_based_system_optimum():
    network = grid(3, 3)
    game = RoutingGame(network, 1.0, paths_per_od=50)
    optimum = game.social_optimum()
    so = user_equilibrium(network, system_optimal=True, relative_gap=1e-12)
    assert optimum.value == pytest.approx(so.tstt, rel=1e-8)
    assert game.strategy_set.contains(optimum.strategy, atol=1e-12)
    assert game.social_cost(optimum.strategy, np.zeros(24)) == pytest.approx(optimum.value, rel=1e-12)
    # the path-restricted optimum with fewer paths can only be worse
    restricted = RoutingGame(network, 1.0, paths_per_od=1).social_optimum().value
    assert restricted > optimum.value * (1 + 1e-6)
    # and the logit equilibrium at any tolls costs at least the optimum
    assert game.equilibrium_social_cost(np.full(24, 2.0)) >= optimum.value


def test_pigou_path_game_social_optimum():
    game = RoutingGame(pigou(), 1.0)
    optimum = game.social_optimum()
    assert optimum.value == pytest.approx(0.75, rel=1e-10)
    np.testing.assert_allclose(optimum.strategy, [0.5, 0.5], atol=1e-8)
    assert list(itertools.chain.from_iterable(game.paths.links)) == [1, 0]
