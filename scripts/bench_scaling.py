"""Time per iteration of two-timescale planners as the number of agents grows.

* ``time_per_iter_ms``: the implicit-gradient single loop on Cournot (n = 1e2 … 1e5 firms):
  one projected-gradient learner step + one incentive step whose hypergradient is a
  matrix-free GMRES solve on Jacobian-vector products (no n × n matrix is ever formed);
* ``social_gradient_time_per_iter_ms``: the social-gradient two-timescale loop on the
  aggregative game (n = 1e3 … 1e5 agents): one learner step + one price step.

All sizes are measured in one process, interleaved over repeats (median kept).

Usage: ``python scripts/bench_scaling.py --json scaling.json``
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from agents import EuclideanMirrorDescent
from incentive_envs import AggregativeGame, AggregativeParams, CournotGame, CournotParams
from incentive_envs.io import write_json_atomic
from planners import SingleLoopPlanner
from planners.social_gradient import SocialGradientPlanner

SIZES = (100, 1_000, 10_000, 100_000)
SOCIAL_GRADIENT_SIZES = (1_000, 10_000, 100_000)


def _milliseconds_per_iteration(game, learner, planner, iterations: int) -> float:
    """Time ``iterations`` two-timescale iterations (one learner step, one incentive step)."""
    theta, x = planner.initial_incentive(), game.strategy_set.uniform_point()
    start = time.perf_counter()
    for k in range(iterations):
        x = planner.advance_followers(learner, x, theta, k)
        theta = planner.update(theta, x, k)
    return 1e3 * (time.perf_counter() - start) / iterations


def _time_single_loop(n: int, iterations: int) -> float:
    """Milliseconds per single-loop iteration on the paper's instance with ``n`` firms."""
    game = CournotGame(CournotParams.paper(n=n, k=0.0))
    beta = 1.5 / (n + 1)
    learner = EuclideanMirrorDescent(game.strategy_set, beta)
    return _milliseconds_per_iteration(
        game, learner, SingleLoopPlanner(game, 1.0, learner_step=beta), iterations
    )


def _time_social_gradient(n: int, iterations: int) -> float:
    """Milliseconds per social-gradient iteration on the aggregative game with ``n`` agents."""
    game = AggregativeGame(AggregativeParams.default(n=n))
    learner = EuclideanMirrorDescent(game.strategy_set, 0.3)
    return _milliseconds_per_iteration(game, learner, SocialGradientPlanner(game, 0.02), iterations)


def _growth_exponent(sizes, times) -> float:
    """Slope of log(time) against log(n): 1 is linear growth."""
    return float(np.polyfit(np.log10(sizes), np.log10(times), 1)[0])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True, help="where to write the results")
    parser.add_argument("--iterations", type=int, default=50, help="iterations per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if args.iterations < 1 or args.repeats < 1:
        raise ValueError(
            f"--iterations and --repeats must be >= 1, got {args.iterations!r}, {args.repeats!r}"
        )
    samples = {n: [] for n in SIZES}
    social_samples = {n: [] for n in SOCIAL_GRADIENT_SIZES}
    for _ in range(args.repeats):
        for n in SIZES:
            samples[n].append(_time_single_loop(n, args.iterations))
        for n in SOCIAL_GRADIENT_SIZES:
            social_samples[n].append(_time_social_gradient(n, args.iterations))
    per_iteration = {n: float(np.median(values)) for n, values in samples.items()}
    social = {n: float(np.median(values)) for n, values in social_samples.items()}
    # growth over the two largest decades, where fixed per-call overhead no longer dominates
    exponent = _growth_exponent(SIZES[1:], [per_iteration[n] for n in SIZES[1:]])
    social_exponent = _growth_exponent(SOCIAL_GRADIENT_SIZES, list(social.values()))
    print(f"{'n':>8} {'single loop ms/it':>18} {'social gradient ms/it':>22}")
    for n in SIZES:
        social_text = f"{social[n]:.3f}" if n in social else "—"
        print(f"{n:>8} {per_iteration[n]:>18.3f} {social_text:>22}")
    print(
        f"growth exponent over n = 1e3..1e5 (1 = linear): single loop {exponent:.2f}, social gradient {social_exponent:.2f}"
    )
    result = {
        "time_per_iter_ms": {str(n): value for n, value in per_iteration.items()},
        "growth_exponent_1e3_to_1e5": exponent,
        "social_gradient_time_per_iter_ms": {str(n): value for n, value in social.items()},
        "social_gradient_growth_exponent": social_exponent,
        "iterations": args.iterations,
        "repeats": args.repeats,
    }
    write_json_atomic(args.json, result)
    print(f"wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
