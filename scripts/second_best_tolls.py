"""Second-best congestion pricing: single loop, double loop and SPSA from zero tolls, scored at
the deterministic user equilibrium.

Instances:

* ``sioux_falls_18`` — Sioux Falls with tolls on the 18 links (0-based TNTP indices)
  11, 14, 21, 32, 35, 38, 41, 45, 46, 48, 51, 52, 57, 64, 66, 68, 70, 73 (the instance of Li,
  Yu, Zhang & Ban's public code; their best: 0.1647 with the double loop, 0.1772 with the
  single loop);
* ``sioux_falls_20`` — the paper's 20 links (:data:`~incentive_envs.routing.SIOUX_FALLS_TOLLED_LINKS`);
* ``chicago_sketch`` — Chicago Sketch with its generalised cost (0.02 min/cent, 0.04 min/mile)
  and tolls on the 50 links with the largest volume/capacity at the untolled UE
  (:func:`~incentive_envs.routing.pricing.most_congested_links`).

Every answer's ``normalised = (F − F_SO)/(F_UE − F_SO)`` is evaluated at an equilibrium solved
independently of the planner: on Sioux Falls the link-based bi-conjugate Frank–Wolfe to
relative gap 1e-7, with ``F_UE``/``F_SO`` from our path-based solver at 1e-10 (checked to
reproduce 7,480,225.34 and 7,194,256.05); on Chicago Sketch the path-based solver to 1e-7
(Frank–Wolfe needs far too long there) and ``F`` is the total generalised cost. ``tstt`` is the
travel time alone. The CPU time (``time.process_time``, BLAS/OpenMP pinned to one thread by
``threadpoolctl``) covers the optimisation only: the median of ``--repeats`` runs goes to the
JSON, minimum and median are printed. The plot shows the normalised objective of the trace's
tolls (scored by the path-based solver to 1e-9, warm-started along the trace; 1e-6 on Chicago)
against CPU time.

Usage: ``python scripts/second_best_tolls.py --json results/second_best_tolls.json --plot
results/second_best_tolls.png`` (about 10 minutes); ``--quick`` runs Sioux Falls' 18 links
with short runs and loose evaluation (a smoke test).
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
from threadpoolctl import threadpool_limits

from incentive_envs.io import write_json_atomic
from incentive_envs.routing import SIOUX_FALLS_TOLLED_LINKS, sioux_falls, tntp_network
from incentive_envs.routing.pricing import (
    METHODS,
    TollingProblem,
    most_congested_links,
    reference_costs,
    second_best_tolls,
)

SIOUX_FALLS_18 = np.array([11, 14, 21, 32, 35, 38, 41, 45, 46, 48, 51, 52, 57, 64, 66, 68, 70, 73])
"""Li et al.'s 18 tolled links (0-based)."""

SIOUX_FALLS_UE_TSTT, SIOUX_FALLS_SO_TSTT = 7_480_225.34, 7_194_256.05
REFERENCE_BEST = {"single_loop": 0.1772, "double_loop": 0.1647}
"""Li et al.'s public code on ``sioux_falls_18`` as measured on this machine."""

CHICAGO_TOLLED = 50
CHICAGO_ITERATIONS = {"single_loop": 150, "double_loop": 40, "spsa": 20}
"""Toll updates on Chicago Sketch (about 0.4 s per single-loop iteration, seconds per solve)."""


def run_instance(network, links, reference, options, iterations=None, **settings):
    """Every method on one instance: ``{method: (json entry, result, cpu times)}``."""
    out = {}
    for method in METHODS:
        cpu, result = [], None
        for _ in range(options.repeats):
            result = second_best_tolls(
                network,
                links,
                method,
                reference=reference,
                iterations=None if iterations is None else iterations[method],
                evaluation_gap=options.evaluation_gap,
                evaluation_solver=options.evaluation_solver,
                **settings,
            )
            cpu.append(result.cpu_s)
        median = statistics.median(cpu)
        entry = {
            "normalised": result.normalised,
            "tstt": result.tstt,
            "tolls": result.tolls.tolist(),
            "iterations": result.iterations,
            "cpu_s": median,
            "ms_per_iteration": 1000.0 * median / max(result.iterations, 1),
        }
        out[method] = (entry, result, cpu)
        print(
            f"  {method:12s} normalised {result.normalised:.4f}  TSTT {result.tstt:,.2f}  "
            f"{result.iterations} iterations  CPU s min {min(cpu):.3f} median {median:.3f}  "
            f"{entry['ms_per_iteration']:.2f} ms/iteration",
            flush=True,
        )
    return out


def trace_curve(network, links, result, gap):
    """``(cpu_s, normalised)`` of the trace's tolls, scored along the trace with warm starts."""
    problem = TollingProblem(network, links)
    ue, so = result.reference
    values = [
        (problem.objective(problem.advance(tolls, gap, 10_000)[0]) - so) / (ue - so)
        for tolls in result.trace["tolls"]
    ]
    return result.trace["cpu_s"], np.array(values)


def plot(path, curves):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 4), squeeze=False)
    for ax, (instance, methods) in zip(axes[0], curves.items()):
        for method, (cpu, values) in methods.items():
            ax.plot(np.maximum(cpu, 1e-3), values, label=method, marker=".")
        if instance == "sioux_falls_18":
            ax.axhline(
                REFERENCE_BEST["double_loop"], color="grey", ls="--", lw=0.8, label="Li et al. best 0.1647"
            )
        ax.set_xscale("log")
        ax.set_xlabel("CPU s")
        ax.set_ylabel("(F − F_SO)/(F_UE − F_SO)")
        ax.set_title(instance)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--plot", help="write the normalised objective against CPU time here (.png)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per method on Sioux Falls")
    parser.add_argument("--quick", action="store_true", help="Sioux Falls 18 links, short runs")
    options = parser.parse_args(argv)
    if options.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {options.repeats}")
    results, curves = {}, {}
    with threadpool_limits(limits=1):
        network = sioux_falls()
        reference = reference_costs(network)
        print(f"Sioux Falls: F_UE {reference[0]:,.2f}, F_SO {reference[1]:,.2f} (path-based, gap 1e-10)")
        if not (
            abs(reference[0] - SIOUX_FALLS_UE_TSTT) < 0.01 and abs(reference[1] - SIOUX_FALLS_SO_TSTT) < 0.01
        ):
            raise RuntimeError(
                "the Sioux Falls UE/SO total travel times differ from 7,480,225.34 / 7,194,256.05"
            )
        options.evaluation_solver = "link"
        options.evaluation_gap = 1e-4 if options.quick else 1e-7
        instances = {"sioux_falls_18": SIOUX_FALLS_18}
        if not options.quick:
            instances["sioux_falls_20"] = SIOUX_FALLS_TOLLED_LINKS
        quick = {"single_loop": 50, "double_loop": 10, "spsa": 5} if options.quick else None
        if options.quick:
            options.repeats = 1
        for instance, links in instances.items():
            print(f"{instance}:")
            runs = run_instance(network, links, reference, options, quick)
            results[instance] = {method: entry for method, (entry, _, _) in runs.items()}
            curves[instance] = {
                method: trace_curve(network, links, result, 1e-9) for method, (_, result, _) in runs.items()
            }
        if not options.quick:
            chicago = tntp_network("Chicago-Sketch")
            links = most_congested_links(chicago, CHICAGO_TOLLED)
            reference = reference_costs(chicago, relative_gap=1e-7)
            print(
                f"chicago_sketch: F_UE {reference[0]:,.2f}, F_SO {reference[1]:,.2f}; tolled links {links.tolist()}"
            )
            options.evaluation_solver, options.repeats = "path", 1
            runs = run_instance(
                chicago, links, reference, options, CHICAGO_ITERATIONS, relative_gap=1e-6, trace_points=8
            )
            results["chicago_sketch"] = {method: entry for method, (entry, _, _) in runs.items()}
            curves["chicago_sketch"] = {
                method: trace_curve(chicago, links, result, 1e-6) for method, (_, result, _) in runs.items()
            }
    if options.json:
        write_json_atomic(options.json, results)
    if options.plot:
        plot(options.plot, curves)
    return results


if __name__ == "__main__":
    main()
