"""Benchmark: user equilibria of the TNTP networks, ours against pytraf and aequilibrae.

Solvers, all in this process, one thread each, alternating within every repeat:

* **ours (path)** — :func:`incentive_envs.routing.path_assignment.path_equilibrium`
  (projected Newton on path flows with column generation);
* **ours (link)** — :func:`incentive_envs.routing.assignment.user_equilibrium` (bi-conjugate
  Frank–Wolfe, the reference);
* **pytraf** — path-based gradient projection in Rust (``pip install pytraf``), ``threads=1``;
* **aequilibrae** — its bi-conjugate Frank–Wolfe (``bfw``), ``set_cores(1)``, with
  ``OMP_WAIT_POLICY=passive`` set before it is imported (Sioux Falls only).

All stop at the same relative gap ``(Σ c x − Σ d κ) / Σ c x``. BLAS and OpenMP pools are
pinned to one thread with ``threadpoolctl``; CPU time (``time.process_time``, all threads of
the process) is reported beside wall time, as the minimum and median over ``--repeats``
(aequilibrae at most ``--aequilibrae-repeats`` times: it needs minutes at 1e-7). A solver
whose package is not installed is skipped, and the output says so.

Networks: Sioux Falls (offline from the aequilibrae wheel, else the cache) at the gaps of
``--gaps``; Anaheim and Chicago Sketch (from ``$INCENTIVE_ENVS_CACHE/tntp`` or downloaded)
at ``--large-gap``, compared with the collection's best-known flows and Chicago Sketch's
published Beckmann objective 17,313,018.7387477 (generalised cost with 0.02 min/cent and
0.04 min/mile).

Usage: ``python scripts/bench_ue.py --json bench_ue.json`` (about 15 minutes, mostly
aequilibrae at 1e-7); a quick check: ``--gaps 1e-3 --repeats 1 --networks sioux_falls``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from incentive_envs.io import write_json_atomic
from incentive_envs.routing import (
    ShortestPathGraph,
    sioux_falls,
    tntp_best_known_flow,
    tntp_network,
    user_equilibrium,
)
from incentive_envs.routing.path_assignment import path_equilibrium

SIOUX_FALLS_BECKMANN = 4_231_335.287
SIOUX_FALLS_TSTT = 7_480_225.34
CHICAGO_SKETCH_BECKMANN = 17_313_018.7387477
FLOW_TOLERANCE = 1e-2
"""Stated tolerance: at relative gap 1e-6, ``max_e |x_e − x*_e| <= FLOW_TOLERANCE · max_e x*_e``
against the best-known flows. The gap pins link flows on nearly flat BPR curves only
loosely: pytraf at 1e-6 deviates by 79 vehicles on Anaheim (0.58% of its largest flow) and 30
on Chicago Sketch."""
LARGE_NETWORKS = {"anaheim": "Anaheim", "chicago_sketch": "Chicago-Sketch"}


def installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def timed(function):
    """``(result, cpu seconds, wall seconds)`` of ``function()``."""
    cpu, wall = time.process_time(), time.perf_counter()
    result = function()
    return result, time.process_time() - cpu, time.perf_counter() - wall


def summary(times: list[float]) -> dict:
    return {"min": min(times), "median": statistics.median(times), "all": times}


def pytraf_solver(network, relative_gap: float):
    """A ready-to-run pytraf assignment of ``network`` (fixed costs as its extra link cost)."""
    import pytraf

    b = np.divide(
        network.delay, network.free_flow_time, out=np.zeros(network.n_links), where=network.free_flow_time > 0
    )
    centroid = np.arange(network.n_nodes) < network.first_thru_node
    graph = pytraf.Network(
        network.n_nodes,
        network.init_node.astype(np.int64),
        network.term_node.astype(np.int64),
        network.free_flow_time,
        network.capacity,
        b,
        network.power,
        centroid,
    )
    demand = pytraf.Demand(
        network.n_nodes,
        network.origins.astype(np.int64),
        network.destinations.astype(np.int64),
        network.demand,
    )
    traffic = pytraf.TrafficClass(demand, extra_link_cost=network.fixed_cost)

    def solve():
        result = pytraf.assign(graph, traffic, gap=relative_gap, max_iter=1_000_000, threads=1)
        return result.links.flow, result.relative_gap, result.iterations

    return solve


def aequilibrae_solver(network, relative_gap: float):
    """A builder of aequilibrae bfw assignments of ``network`` (graph from our arrays, which
    equal the TNTP files), one core, without progress bars."""
    import pandas as pd
    from aequilibrae.matrix import AequilibraeMatrix
    from aequilibrae.paths import Graph, TrafficAssignment, TrafficClass

    links = pd.DataFrame(
        {
            "link_id": np.arange(1, network.n_links + 1),
            "a_node": network.init_node + 1,
            "b_node": network.term_node + 1,
            "direction": 1,
            "free_flow_time": network.free_flow_time,
            "capacity": network.capacity,
            "b": network.delay / network.free_flow_time,
            "power": network.power,
        }
    )
    graph = Graph()
    graph.network = links
    graph.prepare_graph(np.arange(1, network.n_nodes + 1))
    graph.set_graph("free_flow_time")
    graph.set_skimming(["free_flow_time"])
    graph.set_blocked_centroid_flows(False)
    matrix = AequilibraeMatrix()
    matrix.create_empty(zones=network.n_nodes, matrix_names=["demand"], memory_only=True)
    matrix.index[:] = np.arange(1, network.n_nodes + 1)
    matrix.matrices[:, :, 0] = network.demand_matrix()
    matrix.computational_view(["demand"])

    def build():
        assignment = TrafficAssignment()
        assignment.set_classes([TrafficClass("car", graph, matrix)])
        assignment.set_vdf("BPR")
        assignment.set_vdf_parameters({"alpha": "b", "beta": "power"})
        assignment.set_capacity_field("capacity")
        assignment.set_time_field("free_flow_time")
        assignment.set_algorithm("bfw")
        assignment.set_cores(1)
        assignment.max_iter = 1_000_000
        assignment.rgap_target = relative_gap
        return assignment

    def solve(assignment):
        assignment.execute()
        flow = assignment.results()["demand_tot"].to_numpy()
        return flow, float(assignment.assignment.rgap), int(assignment.assignment.iter)

    return build, solve


def bench_sioux_falls(
    network, gap: float, repeats: int, aequilibrae_repeats: int, competitors: list[str]
) -> dict:
    times = {name: ([], []) for name in ("ours", "ours_link", *competitors)}
    solvers = {
        "ours": lambda: path_equilibrium(network, relative_gap=gap),
        "ours_link": lambda: user_equilibrium(network, relative_gap=gap, graph=ShortestPathGraph(network)),
    }
    if "pytraf" in competitors:
        solvers["pytraf"] = pytraf_solver(network, gap)
    if "aequilibrae" in competitors:
        build, solve_aequilibrae = aequilibrae_solver(network, gap)
    results = {}
    for repeat in range(repeats):
        for name in times:
            if name == "aequilibrae":
                if repeat >= aequilibrae_repeats:
                    continue
                assignment = build()
                results[name], cpu, wall = timed(lambda assignment=assignment: solve_aequilibrae(assignment))
            else:
                results[name], cpu, wall = timed(solvers[name])
            times[name][0].append(cpu)
            times[name][1].append(wall)
    ours, link = results["ours"], results["ours_link"]
    entry = {
        "ours_cpu_s": statistics.median(times["ours"][0]),
        "ours_wall_s": statistics.median(times["ours"][1]),
        "ours_iterations": ours.iterations,
        "ours_relative_gap": ours.relative_gap,
        "ours_cpu": summary(times["ours"][0]),
        "ours_wall": summary(times["ours"][1]),
        "tstt": ours.tstt,
        "beckmann": ours.beckmann,
        "tstt_relative_error": ours.tstt / SIOUX_FALLS_TSTT - 1.0,
        "beckmann_relative_error": ours.beckmann / SIOUX_FALLS_BECKMANN - 1.0,
        "ours_link_cpu_s": statistics.median(times["ours_link"][0]),
        "ours_link_wall_s": statistics.median(times["ours_link"][1]),
        "ours_link_iterations": link.iterations,
        "ours_link_relative_gap": link.relative_gap,
        "ours_link_cpu": summary(times["ours_link"][0]),
    }
    for name in competitors:
        flow, reached, iterations = results[name]
        entry[f"{name}_cpu_s"] = statistics.median(times[name][0])
        entry[f"{name}_wall_s"] = statistics.median(times[name][1])
        entry[f"{name}_cpu"] = summary(times[name][0])
        entry[f"{name}_iterations"] = iterations
        entry[f"{name}_relative_gap"] = reached
        entry[f"{name}_tstt"] = float(flow @ network.link_travel_time(flow))
        entry[f"{name}_max_link_flow_difference"] = float(np.max(np.abs(flow - ours.link_flow)))
        entry[f"ours_cpu_over_{name}"] = entry["ours_cpu_s"] / entry[f"{name}_cpu_s"]
    return entry


def bench_large(name: str, folder: str, gap: float, repeats: int, competitors: list[str]) -> dict:
    network = tntp_network(folder)
    best = tntp_best_known_flow(folder)
    cpu_times, wall_times = [], []
    for _ in range(repeats):
        result, cpu, wall = timed(lambda: path_equilibrium(network, relative_gap=gap))
        cpu_times.append(cpu)
        wall_times.append(wall)
    deviation = np.abs(result.link_flow - best)
    best_beckmann = float(network.link_cost_integral(best).sum())
    entry = {
        "relative_gap": result.relative_gap,
        "requested_relative_gap": gap,
        "beckmann": result.beckmann,
        "cpu_s": statistics.median(cpu_times),
        "wall_s": statistics.median(wall_times),
        "cpu": summary(cpu_times),
        "wall": summary(wall_times),
        "iterations": result.iterations,
        "paths": result.paths.n_paths,
        "best_known_beckmann": best_beckmann,
        "beckmann_relative_error_to_best_known": result.beckmann / best_beckmann - 1.0,
        "max_link_flow_deviation": float(deviation.max()),
        "max_best_known_link_flow": float(best.max()),
        "flow_tolerance": FLOW_TOLERANCE * float(best.max()),
        "flows_within_tolerance": bool(deviation.max() <= FLOW_TOLERANCE * best.max()),
    }
    if name == "chicago_sketch":
        entry["published_beckmann"] = CHICAGO_SKETCH_BECKMANN
        entry["beckmann_relative_error"] = result.beckmann / CHICAGO_SKETCH_BECKMANN - 1.0
    if "pytraf" in competitors:
        (flow, reached, iterations), cpu, wall = timed(pytraf_solver(network, gap))
        entry.update(
            pytraf_cpu_s=cpu,
            pytraf_wall_s=wall,
            pytraf_relative_gap=reached,
            pytraf_iterations=iterations,
            pytraf_max_link_flow_deviation=float(np.max(np.abs(flow - best))),
        )
    return entry


def print_tables(result: dict) -> None:
    print(result["threads"])
    for gap, entry in result.get("sioux_falls", {}).items():
        print(f"\nSioux Falls UE to relative gap {gap} (CPU/wall seconds, median of the repeats)")
        print(f"{'':18}{'CPU s':>10}{'wall s':>10}{'iterations':>12}{'gap reached':>14}")
        rows = [("ours (path)", "ours"), ("ours (link, BFW)", "ours_link")]
        rows += [(name, name) for name in ("pytraf", "aequilibrae") if f"{name}_cpu_s" in entry]
        for label, key in rows:
            print(
                f"{label:18}{entry[f'{key}_cpu_s']:>10.4f}{entry[f'{key}_wall_s']:>10.4f}"
                f"{entry[f'{key}_iterations']:>12}{entry[f'{key}_relative_gap']:>14.2e}"
            )
        print(
            f"TSTT {entry['tstt']:.2f} (rel. error {entry['tstt_relative_error']:.1e}), Beckmann "
            f"{entry['beckmann']:.4f} (rel. error {entry['beckmann_relative_error']:.1e})"
        )
        for name in ("pytraf", "aequilibrae"):
            if f"ours_cpu_over_{name}" in entry:
                print(f"ours / {name} CPU time: {entry[f'ours_cpu_over_{name}']:.2f}")
    for name in LARGE_NETWORKS:
        if name in result:
            entry = result[name]
            print(
                f"\n{name}: gap {entry['relative_gap']:.2e} in {entry['iterations']} iterations, "
                f"{entry['cpu_s']:.2f} s CPU / {entry['wall_s']:.2f} s wall; Beckmann {entry['beckmann']:.4f} "
                f"(rel. to best known {entry['beckmann_relative_error_to_best_known']:.1e}); max link flow "
                f"deviation {entry['max_link_flow_deviation']:.3g} (tolerance {entry['flow_tolerance']:.3g})"
            )
            if "pytraf_cpu_s" in entry:
                print(
                    f"  pytraf: {entry['pytraf_cpu_s']:.2f} s CPU, gap {entry['pytraf_relative_gap']:.2e}, "
                    f"max deviation {entry['pytraf_max_link_flow_deviation']:.3g}"
                )
    for note in result["skipped"]:
        print(note)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write results here (atomically)")
    parser.add_argument("--gaps", default="1e-6,1e-7", help="Sioux Falls relative gaps, comma separated")
    parser.add_argument("--large-gap", type=float, default=1e-6, help="relative gap for Anaheim and Chicago")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--aequilibrae-repeats", type=int, default=1)
    parser.add_argument("--networks", default="sioux_falls,anaheim,chicago_sketch")
    args = parser.parse_args(argv)
    try:
        gaps = [float(gap) for gap in args.gaps.split(",")]
    except ValueError:
        parser.error(f"--gaps must be numbers, got {args.gaps!r}")
    if not all(0 < gap < 1 for gap in [*gaps, args.large_gap]):
        parser.error("relative gaps must be in (0, 1)")
    if args.repeats < 1 or args.aequilibrae_repeats < 1:
        parser.error("--repeats and --aequilibrae-repeats must be >= 1")
    networks = args.networks.split(",")
    unknown = sorted(set(networks) - {"sioux_falls", *LARGE_NETWORKS})
    if unknown:
        parser.error(f"unknown networks {unknown}")
    competitors, skipped = [], []
    for package in ("pytraf", "aequilibrae"):
        if installed(package):
            competitors.append(package)
        else:
            skipped.append(f"skipped {package}: not installed (pip install -e '.[traffic]')")
    late = "aequilibrae" in sys.modules
    for name, value in (
        ("OMP_WAIT_POLICY", "passive"),
        ("OMP_NUM_THREADS", "1"),
        ("AEQ_SHOW_PROGRESS", "FALSE"),
    ):
        os.environ.setdefault(name, value)
    if "aequilibrae" in competitors:
        import aequilibrae  # noqa: F401  (its OpenMP runtime reads OMP_WAIT_POLICY when it loads)
    with threadpool_limits(limits=1):
        pools = ", ".join(
            sorted(f"{pool['internal_api']}={pool['num_threads']}" for pool in threadpool_info())
        )
        result = {
            "threads": (
                f"threads: threadpoolctl limits every pool to 1 ({pools}); OMP_WAIT_POLICY="
                f"{os.environ['OMP_WAIT_POLICY']}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}"
                f"{' (aequilibrae was imported before the benchmark set them)' if late else ''}; "
                "pytraf threads=1; aequilibrae set_cores(1)"
            ),
            "skipped": skipped,
            "repeats": args.repeats,
            "aequilibrae_repeats": args.aequilibrae_repeats,
        }
        if "sioux_falls" in networks:
            network = sioux_falls()
            result["sioux_falls"] = {
                format(gap, "g"): bench_sioux_falls(
                    network, gap, args.repeats, args.aequilibrae_repeats, competitors
                )
                for gap in gaps
            }
        for name, folder in LARGE_NETWORKS.items():
            if name in networks:
                result[name] = bench_large(
                    name, folder, args.large_gap, args.repeats, [c for c in competitors if c == "pytraf"]
                )
    print_tables(result)
    if args.json:
        write_json_atomic(args.json, result)
    return result


if __name__ == "__main__":
    main()
