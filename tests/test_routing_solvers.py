"""Traffic equilibrium solvers: the vectorised tree loading and path extraction against
brute force, the path-based projected Newton solver (closed forms, agreement with
Frank–Wolfe, published Sioux Falls values, the collection's best-known flows, warm starts,
fixed path sets, validation), generalised costs, system-optimum derivatives against finite
differences, and the convergence warnings of every solver."""

import heapq
import warnings

import numpy as np
import pytest
from conftest import requires_sioux_falls
from hypothesis_compat import given, settings, st

from incentive_envs.routing import (
    SIOUX_FALLS_TOLLED_LINKS,
    Network,
    RoutingGame,
    braess,
    grid,
    network_from_links,
    pigou,
    sioux_falls,
    tntp_best_known_flow,
    tntp_network,
    user_equilibrium,
)
from incentive_envs.routing.assignment import (
    ConvergenceError,
    ConvergenceWarning,
    ShortestPathGraph,
    _ancestor_tables,
    _subtree_sums,
    link_cost_functions,
)
from incentive_envs.routing.network import BRAESS_BRIDGE_LINK
from incentive_envs.routing.path_assignment import (
    PathFlows,
    _segment_project_to_simplex,
    path_equilibrium,
)

SIOUX_FALLS_BECKMANN = 4_231_335.287_107_44  # at the collection's best-known flows
SIOUX_FALLS_TSTT = 7_480_225.34


def _zoned_network_with_parallel_links() -> Network:
    """Zones 0–2 (first_thru_node 3), through nodes 3–6, two pairs of parallel links, a
    shortcut through zone 1 that paths must not take, and a constant connector."""
    links = [
        (0, 3, 0.5, 10, 0.0, 4),
        (3, 4, 2.0, 5, 0.3, 4),
        (3, 4, 2.5, 8, 0.2, 4),
        (4, 5, 1.0, 4, 0.15, 4),
        (5, 2, 0.5, 10, 0.0, 4),
        (3, 1, 0.1, 10, 0.0, 4),
        (1, 5, 0.1, 10, 0.0, 4),
        (1, 6, 0.5, 10, 0.0, 4),
        (6, 4, 1.0, 6, 0.5, 2),
        (6, 4, 1.5, 9, 0.1, 1),
        (5, 6, 3.0, 7, 0.45, 4),
        (4, 3, 2.0, 5, 0.3, 4),
        (6, 1, 0.5, 10, 0.0, 4),
        (3, 0, 0.5, 10, 0.0, 4),
        (2, 5, 0.5, 10, 0.0, 4),
        (5, 4, 1.0, 4, 0.15, 4),
    ]
    demand = {(0, 2): 12.0, (0, 1): 3.0, (1, 2): 7.0, (2, 0): 5.0, (1, 0): 2.0}
    return network_from_links(7, links, demand, "zoned", first_thru_node=3)


def _reference_shortest_paths(network: Network, link_cost: np.ndarray):
    """Per OD pair the shortest path cost and links by a textbook Dijkstra over the link list
    in pure Python (paths start and end at zones but never pass through one)."""
    outgoing = [[] for _ in range(network.n_nodes)]
    for e in range(network.n_links):
        outgoing[int(network.init_node[e])].append(e)
    costs, paths = [], []
    for origin, destination in zip(network.origins.tolist(), network.destinations.tolist()):
        best, via, heap = {origin: 0.0}, {}, [(0.0, origin)]
        while heap:
            distance, node = heapq.heappop(heap)
            if distance > best[node] or (node < network.first_thru_node and node != origin):
                continue
            for e in outgoing[node]:
                head = int(network.term_node[e])
                if distance + link_cost[e] < best.get(head, np.inf):
                    best[head] = distance + link_cost[e]
                    via[head] = e
                    heapq.heappush(heap, (best[head], head))
        path, node = [], destination
        while node != origin:
            path.append(via[node])
            node = int(network.init_node[via[node]])
        costs.append(best[destination])
        paths.append(path[::-1])
    return np.array(costs), paths


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(sioux_falls, marks=requires_sioux_falls),
        _zoned_network_with_parallel_links,
        lambda: grid(3, 4, seed=2),
        braess,
    ],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_all_or_nothing_and_path_extraction_against_brute_force(make, seed):
    network = make()
    graph = ShortestPathGraph(network)
    for round_seed in (seed, seed + 10):  # the graph's data array is rewritten in place
        link_cost = np.random.default_rng(round_seed).uniform(0.5, 5.0, network.n_links)  # no ties
        kappa, paths = _reference_shortest_paths(network, link_cost)
        flow = np.zeros(network.n_links)
        for path, volume in zip(paths, network.demand):
            flow[path] += volume
        loaded, od_cost = graph.all_or_nothing(link_cost)
        np.testing.assert_allclose(od_cost, kappa, rtol=1e-12)
        np.testing.assert_allclose(loaded, flow, rtol=1e-12, atol=1e-12)
        _, predecessor, pair_link = graph.shortest_paths(link_cost)
        for chosen in (np.arange(network.n_od), np.arange(network.n_od)[::-2]):
            links, lengths = graph.path_links(predecessor, pair_link, chosen)
            assert lengths.tolist() == [len(paths[i]) for i in chosen]
            for got, i in zip(np.split(links, np.cumsum(lengths)[:-1]), chosen):
                np.testing.assert_array_equal(got, paths[i])


@st.composite
def forests(draw):
    n = draw(st.integers(1, 60))
    parent = [-1] + [draw(st.integers(-1, i - 1)) for i in range(1, n)]
    labels = draw(st.permutations(range(n)))
    relabelled = np.full(n, -1)
    for child, mother in enumerate(parent):
        relabelled[labels[child]] = -1 if mother < 0 else labels[mother]
    values = np.array(draw(st.lists(st.floats(0, 10), min_size=n, max_size=n)))
    return relabelled, values


@given(forests())
@settings(max_examples=60, deadline=None)
def test_pointer_doubling_on_random_forests(forest):
    parent, values = forest

    def ancestors(node):
        chain = []
        while parent[node] >= 0:
            node = parent[node]
            chain.append(node)
        return chain

    expected_sums = values.copy()
    for node in range(parent.size):
        for ancestor in ancestors(node):
            expected_sums[ancestor] += values[node]
    np.testing.assert_allclose(_subtree_sums(parent, values), expected_sums, rtol=1e-12, atol=1e-12)
    tables, depth = _ancestor_tables(parent)
    np.testing.assert_array_equal(depth, [len(ancestors(node)) for node in range(parent.size)])
    for level, table in enumerate(tables):
        jump = 2**level
        expected = [
            chain[jump - 1] if len(chain) >= jump else -1 for chain in map(ancestors, range(parent.size))
        ]
        np.testing.assert_array_equal(table, expected)
    assert len(tables) == int(np.ceil(np.log2(depth.max() + 1)))


@given(
    st.lists(st.lists(st.floats(-5, 5), min_size=1, max_size=6), min_size=1, max_size=5),
    st.lists(st.floats(0.1, 10), min_size=5, max_size=5),
)
@settings(max_examples=60, deadline=None)
def test_segment_projection_onto_simplices(blocks, totals):
    values = np.concatenate([np.array(block) for block in blocks])
    segment = np.repeat(np.arange(len(blocks)), [len(block) for block in blocks])
    totals = np.array(totals[: len(blocks)])
    projected = _segment_project_to_simplex(values, segment, totals)
    assert np.all(projected >= 0)
    np.testing.assert_allclose(np.bincount(segment, projected), totals, rtol=1e-12)
    # the projection's optimality condition: v − w = λ on the support, v − w <= λ off it
    for k in range(len(blocks)):
        v, w = values[segment == k], projected[segment == k]
        shift = (v - w)[w > 0]
        np.testing.assert_allclose(shift, shift[0], atol=1e-9)
        assert np.all((v - w)[w == 0] <= shift[0] + 1e-9)


# -- the path-based solver: closed forms and references -----------------------------------


def test_path_equilibrium_pigou_and_braess():
    ue = path_equilibrium(pigou(), relative_gap=1e-12)
    np.testing.assert_allclose(ue.link_flow, [0.0, 1.0], atol=1e-12)
    assert ue.converged and ue.relative_gap <= 1e-12
    so = path_equilibrium(pigou(), system_optimal=True, relative_gap=1e-12)
    np.testing.assert_allclose(so.link_flow, [0.5, 0.5], atol=1e-9)
    assert so.total_cost == pytest.approx(0.75, abs=1e-12)
    ue = path_equilibrium(braess(), relative_gap=1e-12)
    np.testing.assert_allclose(ue.link_flow, [4, 2, 2, 4, 2], atol=1e-9)
    assert ue.tstt == pytest.approx(552, rel=1e-12)
    so = path_equilibrium(braess(), system_optimal=True, relative_gap=1e-12)
    np.testing.assert_allclose(so.link_flow, [3, 3, 3, 3, 0], atol=1e-9)
    assert so.tstt == pytest.approx(498, rel=1e-12)


@pytest.mark.parametrize("toll", [0.0, 3.25, 12.99, 13.0, 20.0])
def test_path_equilibrium_tolled_braess_closed_form(toll):
    """Bridge toll π: the outer paths carry f = min(2 + π/13, 3) each (see test_routing)."""
    tolls = np.zeros(5)
    tolls[BRAESS_BRIDGE_LINK] = toll
    result = path_equilibrium(braess(), tolls, relative_gap=1e-12)
    f = min(2.0 + toll / 13.0, 3.0)
    np.testing.assert_allclose(result.link_flow, [6 - f, f, f, 6 - f, 6 - 2 * f], atol=1e-9)
    assert result.relative_gap <= 1e-12


def _brute_force_gap(network, result, tolls=None, marginal=False):
    cost = network.marginal_cost(result.link_flow) if marginal else result.link_cost
    if tolls is not None:
        cost = cost + tolls
    kappa, _ = _reference_shortest_paths(network, cost)
    total = cost @ result.link_flow
    return (total - network.demand @ kappa) / total


@pytest.mark.parametrize(
    "make", [lambda: grid(3, 3), lambda: grid(2, 4, seed=3), _zoned_network_with_parallel_links]
)
@pytest.mark.parametrize("system_optimal", [False, True])
def test_path_equilibrium_agrees_with_frank_wolfe(make, system_optimal):
    network = make()
    tolls = None if system_optimal else np.random.default_rng(3).uniform(0, 2, network.n_links)
    result = path_equilibrium(network, tolls, system_optimal=system_optimal, relative_gap=1e-11)
    reference = user_equilibrium(network, tolls, system_optimal=system_optimal, relative_gap=1e-12)
    assert result.converged and result.relative_gap <= 1e-11
    assert _brute_force_gap(network, result, tolls, system_optimal) == pytest.approx(
        result.relative_gap, rel=1e-5, abs=1e-13
    )
    scale = network.total_demand
    np.testing.assert_allclose(result.link_flow, reference.link_flow, atol=1e-5 * scale)
    if system_optimal:
        assert result.total_cost == pytest.approx(reference.total_cost, rel=1e-10)
    else:
        assert result.beckmann == pytest.approx(reference.beckmann, rel=1e-10)
    paths = result.paths
    assert np.all(paths.flow >= 0)
    np.testing.assert_allclose(np.bincount(paths.od, paths.flow), network.demand, rtol=1e-12)
    np.testing.assert_allclose(paths.incidence(network.n_links).T @ paths.flow, result.link_flow, rtol=1e-12)
    # used paths are shortest: every path with flow costs its pair's minimum (to the gap)
    cost = network.marginal_cost(result.link_flow) if system_optimal else result.link_cost + tolls
    path_cost = paths.incidence(network.n_links) @ cost
    kappa = np.array([min(path_cost[paths.od == i]) for i in range(network.n_od)])
    used = paths.flow > 1e-9 * network.demand[paths.od]
    np.testing.assert_allclose(path_cost[used], kappa[paths.od[used]], rtol=1e-6)


@requires_sioux_falls
def test_path_equilibrium_sioux_falls_published_values():
    network = sioux_falls()
    result = path_equilibrium(network, relative_gap=1e-9)
    assert result.converged and result.relative_gap <= 1e-9
    assert result.beckmann == pytest.approx(SIOUX_FALLS_BECKMANN, rel=1e-11)
    assert result.tstt == pytest.approx(SIOUX_FALLS_TSTT, rel=1e-7)
    balance = np.bincount(network.init_node, result.link_flow, 24) - np.bincount(
        network.term_node, result.link_flow, 24
    )
    supply = np.bincount(network.origins, network.demand, 24) - np.bincount(
        network.destinations, network.demand, 24
    )
    np.testing.assert_allclose(balance, supply, atol=1e-9 * network.total_demand)


def _cached(name):
    try:
        return tntp_network(name, download=False), tntp_best_known_flow(name, download=False)
    except FileNotFoundError as error:
        pytest.skip(f"the TNTP cache ($INCENTIVE_ENVS_CACHE/tntp/{name}) is not available offline: {error}")


def test_path_equilibrium_sioux_falls_best_known_flows():
    network, best = _cached("SiouxFalls")
    result = path_equilibrium(network, relative_gap=1e-10)
    assert np.max(np.abs(result.link_flow - best)) <= 1e-5 * best.max()


def test_path_equilibrium_anaheim_best_known_flows():
    """Anaheim (416 nodes, 914 links, zones not passed through): at relative gap 1e-6 the
    Beckmann objective is within 1e-7 of the best-known flows' and link flows within 1% of
    the largest flow (pytraf at 1e-6 deviates by 79 vehicles, 0.58%); at 1e-9 within 1e-4."""
    network, best = _cached("Anaheim")
    reference = network.link_cost_integral(best).sum()
    result = path_equilibrium(network, relative_gap=1e-6)
    assert result.beckmann == pytest.approx(reference, rel=1e-7)
    assert np.max(np.abs(result.link_flow - best)) <= 1e-2 * best.max()
    tight = path_equilibrium(network, relative_gap=1e-9, start=result.paths)
    assert tight.beckmann == pytest.approx(reference, rel=1e-11)
    assert np.max(np.abs(tight.link_flow - best)) <= 1e-4 * best.max()


@pytest.mark.slow
def test_path_equilibrium_chicago_sketch_published_objective():
    """Chicago Sketch with the generalised cost: relative gap 1e-6, Beckmann objective within
    1e-6 of the published 17,313,018.7387477 and link flows within 1% of the largest
    best-known flow (about 12 s of CPU time)."""
    network, best = _cached("Chicago-Sketch")
    result = path_equilibrium(network, relative_gap=1e-6)
    assert result.converged
    assert result.beckmann == pytest.approx(17_313_018.7387477, rel=1e-6)
    assert np.max(np.abs(result.link_flow - best)) <= 1e-2 * best.max()


def test_generalised_costs_closed_form():
    """Link A: t = 1 + x; link B: constant 2 plus fixed cost 0.5; demand 3. UE: 1 + x_A =
    2.5, so x = (1.5, 1.5), TSTT 1.5·2.5 + 1.5·2 = 6.75, total cost 7.5, Beckmann
    ∫_0^1.5 (1 + s) ds + 1.5·2.5 = 6.375. SO: 1 + 2 x_A = 2.5, x = (0.75, 2.25), total cost
    0.75·1.75 + 2.25·2.5 = 6.9375."""
    network = Network(
        n_nodes=2,
        init_node=[0, 0],
        term_node=[1, 1],
        free_flow_time=[1.0, 2.0],
        capacity=[1.0, 1.0],
        delay=[1.0, 0.0],
        power=[1.0, 4.0],
        origins=[0],
        destinations=[1],
        demand=[3.0],
        fixed_cost=[0.0, 0.5],
    )
    for solve in (path_equilibrium, user_equilibrium):
        ue = solve(network, relative_gap=1e-12)
        np.testing.assert_allclose(ue.link_flow, [1.5, 1.5], atol=1e-10)
        assert (ue.tstt, ue.total_cost, ue.beckmann) == pytest.approx((6.75, 7.5, 6.375), rel=1e-10)
        so = solve(network, system_optimal=True, relative_gap=1e-12)
        np.testing.assert_allclose(so.link_flow, [0.75, 2.25], atol=1e-9)
        assert so.total_cost == pytest.approx(6.9375, rel=1e-10)


# -- warm starts and fixed path sets -------------------------------------------------------


@requires_sioux_falls
def test_warm_start_with_nearby_tolls():
    network = sioux_falls()
    rng = np.random.default_rng(11)
    tolls = np.zeros(network.n_links)
    tolls[SIOUX_FALLS_TOLLED_LINKS] = rng.uniform(0, 5, 20)
    first = path_equilibrium(network, tolls, relative_gap=1e-8)
    nearby = tolls.copy()
    nearby[SIOUX_FALLS_TOLLED_LINKS] += rng.uniform(-0.1, 0.1, 20).clip(-tolls[SIOUX_FALLS_TOLLED_LINKS])
    cold = path_equilibrium(network, nearby, relative_gap=1e-8)
    warm = path_equilibrium(network, nearby, relative_gap=1e-8, start=first.paths)
    assert warm.converged and warm.iterations < cold.iterations / 2
    np.testing.assert_allclose(warm.link_flow, cold.link_flow, atol=1e-3, rtol=1e-5)
    assert warm.beckmann == pytest.approx(cold.beckmann, rel=1e-8)


def test_fixed_path_set_keeps_its_paths():
    network = grid(3, 3)
    game = RoutingGame(network, 1.0, paths_per_od=3)
    start = PathFlows.from_path_set(game.paths, network.demand[game.paths.od] / 3)
    result = path_equilibrium(network, relative_gap=1e-10, start=start, column_generation=False)
    assert result.converged
    np.testing.assert_array_equal(result.paths.od, start.od)
    np.testing.assert_array_equal(result.paths.offsets, start.offsets)
    np.testing.assert_array_equal(result.paths.links, start.links)
    # the gap is over the path set: the network's shortest paths may do better
    free = path_equilibrium(network, relative_gap=1e-10)
    assert result.beckmann >= free.beckmann * (1 - 1e-12)
    with pytest.raises(ValueError, match="column_generation=False solves over the paths of start"):
        path_equilibrium(network, column_generation=False)


def _start(network):
    return path_equilibrium(network, relative_gap=1e-3).paths


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda p: "paths", "start must be PathFlows"),
        (lambda p: PathFlows(p.od[::-1].copy(), p.offsets, p.links, p.flow), "non-decreasing OD indices"),
        (
            lambda p: PathFlows(p.od[1:], p.offsets[1:] - p.offsets[1], p.links[p.offsets[1] :], p.flow[1:]),
            "every OD",
        ),
        (lambda p: PathFlows(p.od, p.offsets, (p.links + 1) % 24, p.flow), "is not a path of OD pair"),
        (lambda p: PathFlows(p.od, p.offsets, p.links, p.flow * 1.01), "sum to"),
        (lambda p: PathFlows(p.od, p.offsets, p.links, -p.flow), "start.flow must be >= 0"),
        (lambda p: PathFlows(p.od, p.offsets[:-1], p.links, p.flow), "start.offsets must have"),
        (
            lambda p: PathFlows(p.od, p.offsets, p.links + 0.5, p.flow),
            "start.links must be a 1-D integer array",
        ),
        (
            lambda p: PathFlows(p.od, p.offsets, p.links, np.where(p.flow > 0, np.nan, 0)),
            "start.flow must be finite",
        ),
    ],
)
def test_path_equilibrium_rejects_bad_starts(change, match):
    network = grid(3, 3)
    start = change(_start(network))
    with pytest.raises(ValueError, match=match):
        path_equilibrium(network, start=start)


def test_start_through_a_zone_is_rejected():
    links = [(0, 1, 1, 1, 0, 1), (1, 3, 1, 1, 0, 1), (0, 2, 5, 1, 0, 1), (2, 3, 5, 1, 0, 1)]
    zoned = network_from_links(4, links, {(0, 3): 1.0}, "z", first_thru_node=2)
    through = PathFlows(np.array([0]), np.array([0, 2]), np.array([0, 1]), np.array([1.0]))
    with pytest.raises(ValueError, match="without passing through a zone"):
        path_equilibrium(zoned, start=through)
    result = path_equilibrium(zoned, relative_gap=1e-12)
    np.testing.assert_allclose(result.link_flow, [0, 0, 1, 1])


def test_warm_start_flows_are_rescaled_to_the_demand_within_tolerance():
    network = grid(3, 3)
    start = _start(network)
    nudged = PathFlows(start.od, start.offsets, start.links, start.flow * (1 + 1e-11))
    result = path_equilibrium(network, start=nudged, relative_gap=1e-9)
    np.testing.assert_allclose(np.bincount(result.paths.od, result.paths.flow), network.demand, rtol=1e-14)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"tolls": -np.ones(24)}, "tolls must be >= 0"),
        ({"tolls": np.ones(24), "system_optimal": True}, "tolls are transfers"),
        ({"relative_gap": 0.0}, "relative_gap must be > 0"),
        ({"max_iterations": 0}, "max_iterations must be a positive integer"),
        ({"max_paths_per_od": 0}, "max_paths_per_od must be a positive integer"),
        ({"column_generation": "yes"}, "column_generation must be True or False"),
        ({"system_optimal": 1}, "system_optimal must be True or False"),
        ({"on_unconverged": "ignore"}, r"on_unconverged must be one of \['warn', 'raise'\]"),
        ({"graph": ShortestPathGraph(grid(2, 2))}, "graph must be built on the same network"),
    ],
)
def test_path_equilibrium_rejects_bad_input(kwargs, match):
    for solve in (path_equilibrium, user_equilibrium, ShortestPathGraph):
        with pytest.raises(ValueError, match="network must be a Network, got str"):
            solve("SiouxFalls")
    with pytest.raises(ValueError, match=match):
        path_equilibrium(grid(3, 3), **kwargs)


# -- convergence reports --------------------------------------------------------------------


@pytest.mark.parametrize("solve", [path_equilibrium, user_equilibrium])
def test_solvers_warn_or_raise_when_they_stop_unconverged(solve):
    network = grid(3, 3)
    with pytest.warns(
        ConvergenceWarning, match=r"stopped after 2 iterations at relative gap [0-9.e-]+ > 1e-12"
    ):
        result = solve(network, relative_gap=1e-12, max_iterations=2)
    assert not result.converged and result.iterations == 2 and result.relative_gap > 1e-12
    assert _brute_force_gap(network, result) == pytest.approx(result.relative_gap, rel=1e-6)
    with pytest.raises(ConvergenceError, match="stopped after 2 iterations"):
        solve(network, relative_gap=1e-12, max_iterations=2, on_unconverged="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert solve(network, relative_gap=1e-8).converged


def test_a_path_cap_that_blocks_new_paths_shows_as_unconverged():
    with pytest.warns(ConvergenceWarning, match="path-based user equilibrium stopped"):
        result = path_equilibrium(grid(3, 3), relative_gap=1e-10, max_paths_per_od=1, max_iterations=30)
    assert np.all(np.bincount(result.paths.od) == 1)
    assert result.relative_gap > 1e-3


def test_social_optimum_reports_an_early_stop():
    """The path-restricted optimum of this game is 98.498; Frank–Wolfe stopped after three
    iterations used to return 124.24 without a word."""
    game = RoutingGame(grid(3, 3, seed=0), 0.5, paths_per_od=4)
    with pytest.warns(
        ConvergenceWarning, match=r"system optimum stopped after 3 iterations at relative gap 0\.\d+"
    ):
        early = game.social_optimum(max_iterations=3)
    assert early.value > 98.5
    with pytest.raises(ConvergenceError):
        game.social_optimum(max_iterations=3, on_unconverged="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        optimum = game.system_optimum()
        value = game.social_optimum().value
    assert optimum.converged and optimum.relative_gap <= 1e-10 and 1 < optimum.iterations < 100
    assert value == optimum.total_cost == pytest.approx(98.498_176_933, rel=1e-10)
    # optimality: used paths have the least marginal social cost of their OD pair
    q = optimum.paths.flow / game.network.demand[game.paths.od]
    marginal = game.social_cost_grad_x(q, np.zeros(24)) / game.network.demand[game.paths.od]
    for i in range(game.network.n_od):
        block = game.paths.od == i
        used = q[block] > 1e-9
        np.testing.assert_allclose(marginal[block][used], marginal[block].min(), rtol=1e-8)
    rng = np.random.default_rng(0)
    s = game.strategy_set
    for _ in range(5):
        assert (
            game.social_cost(
                s.exponentiated(s.uniform_point(), rng.normal(size=s.dim)), np.zeros(game.incentive_set.dim)
            )
            >= value
        )


# -- derivatives -----------------------------------------------------------------------------


@pytest.mark.parametrize("power", [0.0, 1.0, 1.25, 1.5, 2.0, 2.5, 4.0])
def test_link_cost_derivatives_against_finite_differences(power):
    """``c'`` and the system optimum's ``d(c + x c')/dx`` by central differences, near zero
    flow too (the second derivative of powers in (1, 2) used to be evaluated with the
    exponent max(p − 2, 0), wrong by a factor (x/cap)^(p−2))."""
    network = Network(  # no constant terms, so that differences of costs keep their digits
        n_nodes=2,
        init_node=[0] * 4,
        term_node=[1] * 4,
        free_flow_time=[0.0, 0.0, 0.0, 0.0],
        capacity=[1.0, 10.0, 0.3, 2.0],
        delay=[0.15, 0.3, 2.0, 0.0],
        power=[power] * 4,
        origins=[0],
        destinations=[1],
        demand=[1.0],
    )
    for flow in ([0.01, 0.05, 0.002, 0.3], [0.5, 7.0, 0.2, 1.0], [3.0, 30.0, 1.0, 5.0]):
        flow = np.array(flow)
        h = 1e-6 * flow
        numeric = (network.link_cost(flow + h) - network.link_cost(flow - h)) / (2 * h)
        np.testing.assert_allclose(network.link_cost_derivative(flow), numeric, rtol=1e-6, atol=1e-12)
        numeric = (network.marginal_cost(flow + h) - network.marginal_cost(flow - h)) / (2 * h)
        np.testing.assert_allclose(network.marginal_cost_derivative(flow), numeric, rtol=1e-6, atol=1e-12)
        total = lambda x: x * network.link_cost(x)  # noqa: E731
        np.testing.assert_allclose(
            network.marginal_cost(flow), (total(flow + h) - total(flow - h)) / (2 * h), rtol=1e-7
        )
        cost, derivative = link_cost_functions(network, np.zeros(4), True)
        np.testing.assert_array_equal(derivative(flow), network.marginal_cost_derivative(flow))
        np.testing.assert_array_equal(cost(flow), network.marginal_cost(flow))
