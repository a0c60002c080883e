"""Benchmark: Sioux Falls user equilibrium, ours (bi-conjugate Frank–Wolfe) vs aequilibrae.

Both solve the link-based UE of TNTP Sioux Falls (no tolls) to the same relative gap
``(Σ c x − Σ d κ) / Σ c x`` with bi-conjugate Frank–Wolfe, in the same process, alternating
``--repeats`` times (the median is reported; the machine is shared, so the ratio is what
means something). Also reported: how far our Beckmann objective and TSTT are from the
published values 4,231,335.287 and 7,480,225.34, and the aequilibrae solution's TSTT.

Needs the ``traffic`` extra (``pip install -e ".[traffic]"``).

Usage: ``python scripts/bench_ue.py --json bench_ue.json [--relative-gap 1e-7]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from incentive_envs.io import write_json_atomic
from incentive_envs.routing import ShortestPathGraph, sioux_falls, user_equilibrium

PUBLISHED_BECKMANN = 4_231_335.287
PUBLISHED_TSTT = 7_480_225.34


def aequilibrae_assignment(network, relative_gap: float):
    """A ready-to-run aequilibrae bfw assignment of ``network`` (graph built from our arrays,
    which equal the TNTP files), without its progress bars."""
    os.environ["AEQ_SHOW_PROGRESS"] = "FALSE"
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
        assignment.max_iter = 1_000_000
        assignment.rgap_target = relative_gap
        return assignment

    return build


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write results here (atomically)")
    parser.add_argument("--relative-gap", type=float, default=1e-7)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if not 0 < args.relative_gap < 1:
        parser.error(f"--relative-gap must be in (0, 1), got {args.relative_gap}")
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    network = sioux_falls("aequilibrae")
    build_aequilibrae = aequilibrae_assignment(network, args.relative_gap)
    ours_times, theirs_times = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        ours = user_equilibrium(network, relative_gap=args.relative_gap, graph=ShortestPathGraph(network))
        ours_times.append(time.perf_counter() - start)
        assignment = build_aequilibrae()
        start = time.perf_counter()
        assignment.execute()
        theirs_times.append(time.perf_counter() - start)
    their_flow = assignment.results()["demand_tot"].to_numpy()
    their_tstt = float(their_flow @ network.link_cost(their_flow))
    result = {
        "relative_gap": args.relative_gap,
        "ours_s": statistics.median(ours_times),
        "aequilibrae_s": statistics.median(theirs_times),
        "speedup": statistics.median(theirs_times) / statistics.median(ours_times),
        "ours_iterations": ours.iterations,
        "ours_relative_gap_reached": ours.relative_gap,
        "aequilibrae_relative_gap_reached": float(assignment.assignment.rgap),
        "aequilibrae_iterations": int(assignment.assignment.iter),
        "tstt": ours.tstt,
        "beckmann": ours.beckmann,
        "tstt_relative_error": ours.tstt / PUBLISHED_TSTT - 1.0,
        "beckmann_relative_error": ours.beckmann / PUBLISHED_BECKMANN - 1.0,
        "aequilibrae_tstt": their_tstt,
        "aequilibrae_tstt_relative_error": their_tstt / PUBLISHED_TSTT - 1.0,
        "max_link_flow_difference": float(np.max(np.abs(ours.link_flow - their_flow))),
        "repeats": args.repeats,
    }
    print(f"Sioux Falls UE to relative gap {args.relative_gap:g} (median of {args.repeats})")
    print(f"{'':14}{'seconds':>10}{'iterations':>12}{'gap reached':>14}{'TSTT rel. error':>17}")
    print(
        f"{'ours (BFW)':14}{result['ours_s']:>10.3f}{ours.iterations:>12}{ours.relative_gap:>14.2e}"
        f"{result['tstt_relative_error']:>17.2e}"
    )
    print(
        f"{'aequilibrae':14}{result['aequilibrae_s']:>10.3f}{result['aequilibrae_iterations']:>12}"
        f"{result['aequilibrae_relative_gap_reached']:>14.2e}{result['aequilibrae_tstt_relative_error']:>17.2e}"
    )
    print(
        f"speed-up {result['speedup']:.2f}x; Beckmann {ours.beckmann:.3f} (rel. error {result['beckmann_relative_error']:.1e})"
    )
    if args.json:
        write_json_atomic(args.json, result)
    return result


if __name__ == "__main__":
    main()
