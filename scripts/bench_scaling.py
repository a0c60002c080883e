"""Time per iteration of the implicit-gradient single loop as the number of firms grows.

One iteration = one projected-gradient learner step + one incentive step whose hypergradient
is a matrix-free GMRES solve on Jacobian-vector products (no n × n matrix is ever formed).
Sizes n = 1e2 … 1e5 are measured in one process, interleaved over repeats (median kept).

Usage: ``python scripts/bench_scaling.py --json scaling.json``
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from agents import EuclideanMirrorDescent
from incentive_envs import CournotGame, CournotParams
from incentive_envs.io import write_json_atomic
from planners import SingleLoopPlanner

SIZES = (100, 1_000, 10_000, 100_000)


def _time_single_loop(n: int, iterations: int) -> float:
    """Milliseconds per single-loop iteration on the paper's instance with ``n`` firms."""
    game = CournotGame(CournotParams.paper(n=n, k=0.0))
    beta = 1.5 / (n + 1)
    learner = EuclideanMirrorDescent(game.strategy_set, beta)
    planner = SingleLoopPlanner(game, 1.0, learner_step=beta)
    theta, x = planner.initial_incentive(), game.strategy_set.uniform_point()
    start = time.perf_counter()
    for k in range(iterations):
        x = planner.advance_followers(learner, x, theta, k)
        theta = planner.update(theta, x, k)
    return 1e3 * (time.perf_counter() - start) / iterations


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True, help="where to write the results")
    parser.add_argument("--iterations", type=int, default=50, help="iterations per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if args.iterations < 1 or args.repeats < 1:
        raise ValueError(f"--iterations and --repeats must be >= 1, got {args.iterations!r}, {args.repeats!r}")
    samples = {n: [] for n in SIZES}
    for _ in range(args.repeats):
        for n in SIZES:
            samples[n].append(_time_single_loop(n, args.iterations))
    per_iteration = {n: float(np.median(values)) for n, values in samples.items()}
    # growth exponent of time ~ n^p from a log-log fit over the two largest decades
    exponent = float(np.polyfit(np.log10(SIZES[1:]), np.log10([per_iteration[n] for n in SIZES[1:]]), 1)[0])
    print(f"{'n':>8} {'ms / iteration':>15} {'µs / firm':>10}")
    for n in SIZES:
        print(f"{n:>8} {per_iteration[n]:>15.3f} {1e3 * per_iteration[n] / n:>10.4f}")
    print(f"fitted growth exponent over n = 1e3..1e5: {exponent:.2f} (1 = linear)")
    result = {
        "time_per_iter_ms": {str(n): value for n, value in per_iteration.items()},
        "growth_exponent_1e3_to_1e5": exponent,
        "iterations": args.iterations,
        "repeats": args.repeats,
    }
    write_json_atomic(args.json, result)
    print(f"wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
