"""TNTP files as the collection writes them (BOM, CRLF, comments anywhere, intrazonal trips,
constant-cost connectors, lengths and tolls, generalised costs), best-known flow files, and
the collection's real networks from the cache (skipped when the cache does not have them):
sizes, totals and the published objectives evaluated at the best-known flows."""

import re

import numpy as np
import pytest
from conftest import requires_sioux_falls_files

from incentive_envs.routing import (
    TNTP_NETWORKS,
    Network,
    read_tntp,
    read_tntp_flow,
    read_tntp_nodes,
    sioux_falls,
    tntp_best_known_flow,
    tntp_network,
    write_tntp,
)
from incentive_envs.routing.tntp import SIOUX_FALLS_DIGEST, cache_dir, content_digest

NET = """<NUMBER OF ZONES> 2
<NUMBER OF NODES> 4
<FIRST THRU NODE> 3
<NUMBER OF LINKS> 4
<END OF METADATA>
~ a comment before the header
~\tinit_node\tterm_node\tcapacity\tlength\tfree_flow_time\tb\tpower\tspeed\ttoll\tlink_type\t;
\t1\t3\t10\t0.5\t0\t0.15\t4\t0\t0\t3\t;
~ a comment inside the link table
\t3\t4\t100\t2.5\t2\t0.15\t4\t0\t40\t1\t;
\t4\t2\t10\t0.25\t1.5\t0.15\t0\t0\t0\t3\t;
\t3\t2\t50\t4\t6\t0\t4\t0\t0\t1\t;
"""

TRIPS = """<NUMBER OF ZONES> 2
<TOTAL OD FLOW> 130
<END OF METADATA>
~ intrazonal trips count in the total but load no link
Origin 1
 1 : 30; 2 : 100;
"""


def _files(tmp_path, net=NET, trips=TRIPS, encoding="utf-8", newline="\n"):
    paths = tmp_path / "x_net.tntp", tmp_path / "x_trips.tntp"
    for path, text in zip(paths, (net, trips)):
        path.write_bytes(text.replace("\n", newline).encode(encoding))
    return paths


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_collection_style_files(tmp_path, encoding, newline):
    network = read_tntp(*_files(tmp_path, encoding=encoding, newline=newline))
    assert (network.n_nodes, network.n_links, network.first_thru_node) == (4, 4, 2)
    np.testing.assert_array_equal(network.origins, [0])
    np.testing.assert_array_equal(network.destinations, [1])
    np.testing.assert_array_equal(network.demand, [100.0])  # the 30 intrazonal trips load nothing
    np.testing.assert_array_equal(network.length, [0.5, 2.5, 0.25, 4.0])
    np.testing.assert_array_equal(network.toll, [0.0, 40.0, 0.0, 0.0])
    np.testing.assert_array_equal(network.fixed_cost, np.zeros(4))
    flow = np.array([7.0, 20.0, 3.0, 9.0])
    # connector with fft 0; BPR link; power 0: the constant fft (1 + b); b 0: the constant fft
    expected = [0.0, 2.0 * (1 + 0.15 * 0.2**4), 1.5 * 1.15, 6.0]
    np.testing.assert_allclose(network.link_cost(flow), expected, rtol=1e-15)
    np.testing.assert_allclose(network.link_travel_time(flow), expected, rtol=1e-15)
    slope = [0.0, 2.0 * 0.15 * 4 * 0.2**3 / 100, 0.0, 0.0]
    np.testing.assert_allclose(network.link_cost_derivative(flow), slope, rtol=1e-15)
    np.testing.assert_allclose(network.link_cost_derivative(np.zeros(4)), np.zeros(4))
    integral = [0.0, 20 * 2.0 * (1 + 0.15 * 0.2**4 / 5), 3 * 1.5 * 1.15, 9 * 6.0]
    np.testing.assert_allclose(network.link_cost_integral(flow), integral, rtol=1e-15)


def test_generalised_costs_from_the_weights(tmp_path):
    network = read_tntp(*_files(tmp_path), toll_weight=0.02, distance_weight=0.04)
    fixed = 0.02 * np.array([0.0, 40.0, 0.0, 0.0]) + 0.04 * np.array([0.5, 2.5, 0.25, 4.0])
    np.testing.assert_allclose(network.fixed_cost, fixed, rtol=1e-15)
    plain = read_tntp(*_files(tmp_path))
    flow = np.array([7.0, 20.0, 3.0, 9.0])
    np.testing.assert_allclose(network.link_cost(flow), plain.link_cost(flow) + fixed, rtol=1e-15)
    np.testing.assert_allclose(network.link_travel_time(flow), plain.link_cost(flow), rtol=1e-15)
    np.testing.assert_allclose(
        network.link_cost_integral(flow), plain.link_cost_integral(flow) + fixed * flow
    )
    np.testing.assert_allclose(network.marginal_cost(flow), plain.marginal_cost(flow) + fixed)
    np.testing.assert_array_equal(network.link_cost_derivative(flow), plain.link_cost_derivative(flow))
    with pytest.raises(ValueError, match="TNTP files cannot store fixed costs"):
        write_tntp(network, tmp_path / "n.tntp", tmp_path / "t.tntp")
    with pytest.raises(ValueError, match="toll_weight must be >= 0"):
        read_tntp(*_files(tmp_path), toll_weight=-0.02)


def test_round_trip_keeps_lengths_tolls_and_constant_links(tmp_path):
    network = read_tntp(*_files(tmp_path))
    write_tntp(network, tmp_path / "y_net.tntp", tmp_path / "y_trips.tntp")
    back = read_tntp(tmp_path / "y_net.tntp", tmp_path / "y_trips.tntp", name="x")
    assert content_digest(back) == content_digest(network)
    np.testing.assert_array_equal(back.power, network.power)


@pytest.mark.parametrize(
    "old, new, line, problem",
    [
        ("\t3\t4\t100\t2.5\t", "\t3\t4\t100\tinf\t", 10, "non-finite number 'inf' in column 'length'"),
        ("\t4\t2\t10\t0.25\t1.5\t0.15\t0\t", "\t4\t2\t10\t0.25\t1.5\t0.15\t-1\t", 11, "power must be >= 0"),
        ("\t1\t3\t10\t0.5\t0\t", "\t1\t3\t10\t0.5\t-0\t", None, None),  # -0 is a number, 0
    ],
)
def test_every_malformed_field_names_file_and_line(tmp_path, old, new, line, problem):
    assert old in NET
    net, trips = _files(tmp_path, net=NET.replace(old, new))
    if problem is None:
        read_tntp(net, trips)
        return
    with pytest.raises(ValueError, match=re.escape(f"{net}:{line}: {problem}")):
        read_tntp(net, trips)


def test_intrazonal_trips_count_toward_the_declared_total(tmp_path):
    net, trips = _files(tmp_path, trips=TRIPS.replace("<TOTAL OD FLOW> 130", "<TOTAL OD FLOW> 100"))
    with pytest.raises(ValueError, match=r"is 100 but the entries sum to 130 \(intrazonal 30 included\)"):
        read_tntp(net, trips)
    only_intrazonal = TRIPS.replace(" 1 : 30; 2 : 100;", " 1 : 30;").replace("130", "30")
    with pytest.raises(ValueError, match="no positive demand between distinct zones"):
        read_tntp(*_files(tmp_path, trips=only_intrazonal))


def test_files_that_are_not_utf8(tmp_path):
    net, trips = _files(tmp_path)
    net.write_bytes(b"<NUMBER OF NODES> \xff\n")
    with pytest.raises(ValueError, match=re.escape(f"{net}: not UTF-8 text")):
        read_tntp(net, trips)


def test_read_tntp_flow(tmp_path):
    network = read_tntp(*_files(tmp_path))
    path = tmp_path / "x_flow.tntp"
    path.write_text(
        "From \tTo \tVolume \tCost \n3\t2\t4.5\t6\n1\t3\t100\t0\n3\t4\t95.5\t2\n4\t2\t95.5\t1.7\n"
    )
    np.testing.assert_array_equal(read_tntp_flow(path, network), [100.0, 95.5, 95.5, 4.5])
    cases = [
        ("1\t3\t100\t0\n", "1\t4\t100\t0\n", 3, "the network has no link 1 -> 4"),
        ("3\t2\t4.5\t6\n", "1\t3\t4.5\t6\n", 3, "link 1 -> 3 is listed twice"),
        ("3\t2\t4.5\t6\n", "3\t2\t-4.5\t6\n", 2, "volume must be >= 0, got -4.5"),
        ("3\t2\t4.5\t6\n", "3\t2\tmany\t6\n", 2, "malformed number 'many' in column 'volume'"),
        ("3\t2\t4.5\t6\n", "3\t2.5\t4.5\t6\n", 2, "the network has no link 3 -> 2.5"),
    ]
    text = path.read_text()
    for old, new, line, problem in cases:
        path.write_text(text.replace(old, new))
        with pytest.raises(ValueError, match=re.escape(f"{path}:{line}: {problem}")):
            read_tntp_flow(path, network)
    path.write_text(text.replace("4\t2\t95.5\t1.7\n", ""))
    with pytest.raises(ValueError, match=re.escape(f"{path}: no flow for link 2 (4 -> 2)")):
        read_tntp_flow(path, network)
    path.write_text(text.replace("From \tTo \tVolume \tCost \n", ""))
    with pytest.raises(ValueError, match="expected a header line"):
        read_tntp_flow(path, network)


def test_parallel_links_in_a_flow_file_are_matched_in_order(tmp_path):
    network = Network(
        n_nodes=2,
        init_node=[0, 0],
        term_node=[1, 1],
        free_flow_time=[1.0, 2.0],
        capacity=[1.0, 1.0],
        delay=[1.0, 0.0],
        power=[1.0, 1.0],
        origins=[0],
        destinations=[1],
        demand=[3.0],
    )
    path = tmp_path / "p_flow.tntp"
    path.write_text("From To Volume Cost\n1 2 1 2\n1 2 2 2\n")
    np.testing.assert_array_equal(read_tntp_flow(path, network), [1.0, 2.0])


# -- the collection's networks from the cache ------------------------------------------


def _from_cache(name: str, toll_weight=None, distance_weight=None) -> tuple[Network, np.ndarray]:
    try:
        network = tntp_network(name, toll_weight=toll_weight, distance_weight=distance_weight, download=False)
        return network, tntp_best_known_flow(name, download=False)
    except FileNotFoundError as error:
        pytest.skip(f"the TNTP cache ($INCENTIVE_ENVS_CACHE/tntp/{name}) is not available offline: {error}")


@pytest.mark.parametrize(
    "name, sizes, demand",
    [
        ("SiouxFalls", (24, 76, 528), 360_600.0),
        ("Anaheim", (416, 914, 1406), 104_694.4),
        ("Chicago-Sketch", (933, 2950, 93_135), 1_137_493.44),
    ],
)
def test_every_network_of_the_collection_loads(name, sizes, demand):
    network, best = _from_cache(name)
    assert (network.n_nodes, network.n_links, network.n_od) == sizes
    assert network.total_demand == pytest.approx(demand, abs=0.01)
    assert network.name == name
    assert best.shape == (network.n_links,) and np.all(best >= 0)
    # the best-known flows satisfy flow conservation up to the files' printed digits
    balance = np.bincount(network.init_node, best, network.n_nodes) - np.bincount(
        network.term_node, best, network.n_nodes
    )
    supply = np.bincount(network.origins, network.demand, network.n_nodes) - np.bincount(
        network.destinations, network.demand, network.n_nodes
    )
    np.testing.assert_allclose(balance, supply, atol=1e-6 * network.total_demand)


def test_chicago_sketch_trips_total_includes_intrazonal_trips():
    network, _ = _from_cache("Chicago-Sketch")
    assert network.total_demand < 1_260_907.44  # the file's <TOTAL OD FLOW>; the rest is intrazonal
    assert TNTP_NETWORKS["Chicago-Sketch"].toll_weight == 0.02
    assert TNTP_NETWORKS["Chicago-Sketch"].distance_weight == 0.04
    np.testing.assert_allclose(network.fixed_cost, 0.02 * network.toll + 0.04 * network.length, rtol=1e-15)
    assert np.all(network.toll == 0) and network.fixed_cost.max() > 1.0


@pytest.mark.parametrize(
    "name, published",
    [("SiouxFalls", 4_231_335.287_107_44), ("Chicago-Sketch", 17_313_018.738_747_7)],
)
def test_published_objectives_at_the_best_known_flows(name, published):
    """Sioux Falls' README gives 42.31335287107440 (×10^5); Chicago Sketch's 17313018.7387477
    with the generalised cost (fft·(1 + b (x/cap)^p) + 0.02 toll + 0.04 length)."""
    network, best = _from_cache(name)
    assert network.link_cost_integral(best).sum() == pytest.approx(published, rel=1e-12)
    if name == "Chicago-Sketch":
        plain, _ = _from_cache(name, toll_weight=0.0, distance_weight=0.0)
        assert plain.link_cost_integral(best).sum() < published * (1 - 1e-3)


@requires_sioux_falls_files
def test_sioux_falls_is_the_same_network_from_every_source():
    network, _ = _from_cache("SiouxFalls")
    assert content_digest(network) == SIOUX_FALLS_DIGEST
    assert content_digest(sioux_falls("aequilibrae")) == SIOUX_FALLS_DIGEST
    assert content_digest(sioux_falls("download")) == SIOUX_FALLS_DIGEST
    assert sioux_falls("aequilibrae").name == network.name == "SiouxFalls"


def test_read_tntp_nodes(tmp_path):
    network = read_tntp(*_files(tmp_path))
    path = tmp_path / "x_node.tntp"
    text = "Node\tX\tY\t;\n2\t1.5\t-2\t;\n1\t0\t0\t;\n3\t7\t7\t;\n4\t8\t9\t;\n"
    path.write_text(text)
    np.testing.assert_array_equal(read_tntp_nodes(path, network), [[0, 0], [1.5, -2], [7, 7], [8, 9]])
    for old, new, problem in [
        ("3\t7\t7", "5\t7\t7", re.escape(f"{path}:4: unknown node 5 (nodes are 1..4)")),
        ("3\t7\t7", "1\t7\t7", re.escape(f"{path}:4: node 1 is listed twice")),
        ("3\t7\t7", "3\t7\tnan", re.escape(f"{path}:4: non-finite number 'nan' in column 'y'")),
        ("3\t7\t7\t;\n", "", re.escape(f"{path}: no coordinates for node 3")),
        ("Node\tX\tY\t;\n", "", "expected a header line 'Node X Y'"),
    ]:
        path.write_text(text.replace(old, new))
        with pytest.raises(ValueError, match=problem):
            read_tntp_nodes(path, network)


@pytest.mark.parametrize(
    "name, file", [("SiouxFalls", "SiouxFalls_node.tntp"), ("Chicago-Sketch", "ChicagoSketch_node.tntp")]
)
def test_the_collections_node_files_load(name, file):
    network, _ = _from_cache(name)
    path = cache_dir() / "tntp" / name / file
    if not path.exists():
        pytest.skip(f"{path} is not in the cache")
    coordinates = read_tntp_nodes(path, network)
    assert coordinates.shape == (network.n_nodes, 2) and np.all(np.isfinite(coordinates))
    if name == "SiouxFalls":
        np.testing.assert_allclose(coordinates[0], [-96.77041974, 43.61282792])


def test_paths_and_networks_are_checked(tmp_path):
    net, trips = _files(tmp_path)
    with pytest.raises(ValueError, match="net_path must be a path"):
        read_tntp(3, trips)
    with pytest.raises(ValueError, match="trips_path must be a path"):
        read_tntp(net, None)
    with pytest.raises(ValueError, match="network must be a Network"):
        read_tntp_flow(net, "SiouxFalls")
    with pytest.raises(ValueError, match="network must be a Network"):
        write_tntp("SiouxFalls", tmp_path / "a", tmp_path / "b")
    with pytest.raises(ValueError, match="directory must be a path"):
        tntp_network("SiouxFalls", directory=1)
