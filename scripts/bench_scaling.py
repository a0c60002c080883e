"""Time per iteration of two-timescale planners as the number of agents grows, against a
minimal NumPy implementation of the same iteration.

* ``single_loop``: the implicit-gradient single loop (Algorithm 1) on the paper's Cournot
  instance (``k = 0``, α = 1, β = 1.5/(n+1), constant) at n = 1e2 … 1e5, run through the
  experiment engine (:func:`planners.simulate`: registry-free objects, the learner's own
  fixed-point map, the Woodbury solve of the diagonal-plus-rank-one adjoint system on the free
  set). Beside it, :func:`minimal_single_loop` — the same iteration written directly in NumPy
  for this game (Sherman–Morrison on the free coordinates), the reference an expert would
  write by hand. Both run from the same start; the script checks they produce the same
  iterates (final taxes and outputs equal to 1e-9 relative) and reports
  ``ratio_to_minimal[n]`` = engine CPU time / minimal CPU time (medians).
* ``social_gradient``: the social-gradient two-timescale loop on the aggregative game
  (n = 1e3 … 1e5), through the engine.

Honest timing: BLAS/OpenMP pinned to one thread (``threadpoolctl``), CPU time
(``time.process_time``) beside wall time, competitors interleaved in each repeat, min and
median over repeats.

Usage: ``python scripts/bench_scaling.py --json scaling.json``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from agents import EuclideanMirrorDescent
from incentive_envs import AggregativeGame, AggregativeParams, CournotGame, CournotParams
from incentive_envs.core import INTERIOR_TOLERANCE
from incentive_envs.io import check_writable, write_json_atomic
from planners import SingleLoopPlanner, SocialGradientPlanner, simulate

SIZES = (100, 1_000, 10_000, 100_000)
SOCIAL_GRADIENT_SIZES = (1_000, 10_000, 100_000)
ALPHA = 1.0


def _iterations(n: int, budget: int) -> int:
    """Iterations per measurement: about ``budget`` agent-iterations × 1e2, at least 20."""
    return max(20, min(2000, budget * 100 // n))


def minimal_single_loop(params: CournotParams, iterations: int, alpha: float, beta: float):
    """Algorithm 1 on the Cournot game written directly in NumPy (the reference).

    Per iteration: one projected-gradient step of the firms,
    ``a ← clip(a + β v(a, π), 0, a_max)`` with ``v = p0 − γQ − (γ + k)a − c − π``; the free set
    ``F`` of the projected map at the new ``a``; the adjoint solve
    ``[−(γ + k)I − γ11ᵀ]_FF y = (∇_a f)_F`` by Sherman–Morrison; and the tax step
    ``π ← clip(π − α embed_F(y), low, high)`` (``∂v/∂π = −I``, ``∇_π f = 0``).
    """
    p0, gamma, k, cap = params.p0, params.gamma, params.k, params.output_cap
    cost, social = params.marginal_cost, params.social_marginal_cost
    low, high = params.tax_bounds
    slope = gamma + k
    x, theta = np.zeros(params.n), np.zeros(params.n)
    hypergradient = np.zeros(params.n)
    for _ in range(iterations):
        x = np.clip(x + beta * (p0 - gamma * x.sum() - slope * x - cost - theta), 0.0, cap)
        total = x.sum()
        step = x + beta * (p0 - gamma * total - slope * x - cost - theta)
        free = np.flatnonzero((step > INTERIOR_TOLERANCE) & (step < cap - INTERIOR_TOLERANCE * max(1.0, cap)))
        rhs = -(p0 - gamma * total - social - k * x)[free]
        # (−slope I − γ 11ᵀ) y = rhs  ⇒  y = −rhs/slope + γ Σrhs / (slope (slope + γ m))
        y = -rhs / slope + gamma * rhs.sum() / (slope * (slope + gamma * free.size))
        hypergradient[:] = 0.0
        hypergradient[free] = y
        theta = np.clip(theta - alpha * hypergradient, low, high)
    return x, theta


def engine_objects(params: CournotParams, alpha: float, beta: float):
    """The game, learner and planner of the engine's run (built outside the timed region)."""
    game = CournotGame(params)
    learner = EuclideanMirrorDescent(game.strategy_set, beta)
    return game, learner, SingleLoopPlanner(game, learner, alpha)


def engine_single_loop(objects, iterations: int):
    """``iterations`` single-loop iterations through :func:`planners.simulate`."""
    for record in simulate(*objects, iterations=iterations, metrics=()):
        pass
    return record.strategy, record.incentive


def social_gradient_objects(n: int):
    game = AggregativeGame(AggregativeParams.default(n=n))
    learner = EuclideanMirrorDescent(game.strategy_set, 0.3)
    return game, learner, SocialGradientPlanner(game, 0.02)


def _timed(function, *args) -> tuple[float, float, object]:
    cpu, wall = time.process_time(), time.perf_counter()
    value = function(*args)
    return time.process_time() - cpu, time.perf_counter() - wall, value


def _stats(samples: list[float], iterations: int) -> dict:
    per_iteration = 1e3 * np.asarray(samples) / iterations
    return {"min_ms": float(per_iteration.min()), "median_ms": float(np.median(per_iteration))}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True, help="where to write the results")
    parser.add_argument("--budget", type=int, default=500, help="iterations at n = 100 (fewer for larger n)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    if args.budget < 1 or args.repeats < 1:
        parser.error(f"--budget and --repeats must be >= 1, got {args.budget!r}, {args.repeats!r}")
    check_writable(args.json, "--json")
    rows = {}
    with threadpool_limits(limits=1):
        threads = sorted({(entry["internal_api"], entry["num_threads"]) for entry in threadpool_info()})
        for n in SIZES:
            params = CournotParams.paper(n=n, k=0.0)
            beta, iterations = 1.5 / (n + 1), _iterations(n, args.budget)
            samples = {"engine": ([], []), "minimal": ([], [])}
            for _ in range(args.repeats):
                cpu, wall, engine_final = _timed(
                    engine_single_loop, engine_objects(params, ALPHA, beta), iterations
                )
                samples["engine"][0].append(cpu)
                samples["engine"][1].append(wall)
                cpu, wall, minimal_final = _timed(minimal_single_loop, params, iterations, ALPHA, beta)
                samples["minimal"][0].append(cpu)
                samples["minimal"][1].append(wall)
            same = all(
                np.allclose(a, b, rtol=1e-9, atol=1e-9 * max(1.0, np.abs(b).max()))
                for a, b in zip(engine_final, minimal_final)
            )
            if not same:
                raise RuntimeError(f"n = {n}: the engine and the minimal loop produced different iterates")
            rows[n] = {
                "iterations": iterations,
                "engine_cpu": _stats(samples["engine"][0], iterations),
                "engine_wall": _stats(samples["engine"][1], iterations),
                "minimal_cpu": _stats(samples["minimal"][0], iterations),
                "minimal_wall": _stats(samples["minimal"][1], iterations),
                "same_iterates": same,
                "free_firms_at_end": int(np.count_nonzero(engine_final[0] > 0)),
            }
            rows[n]["ratio_to_minimal"] = (
                rows[n]["engine_cpu"]["median_ms"] / rows[n]["minimal_cpu"]["median_ms"]
            )
        social = {}
        for n in SOCIAL_GRADIENT_SIZES:
            iterations = _iterations(n, args.budget)
            cpu = [
                _timed(engine_single_loop, social_gradient_objects(n), iterations)[0]
                for _ in range(args.repeats)
            ]
            social[n] = {"iterations": iterations, "cpu": _stats(cpu, iterations)}
    exponent = float(
        np.polyfit(np.log10(SIZES[1:]), np.log10([rows[n]["engine_cpu"]["median_ms"] for n in SIZES[1:]]), 1)[
            0
        ]
    )
    print(
        f"single loop (Algorithm 1) on Cournot, ms per iteration (CPU, median of {args.repeats}; BLAS threads: {threads})"
    )
    print(
        f"{'n':>8}{'engine CPU':>12}{'engine wall':>13}{'minimal CPU':>13}{'minimal wall':>14}{'ratio':>8}{'free firms':>12}"
    )
    for n, row in rows.items():
        print(
            f"{n:>8}{row['engine_cpu']['median_ms']:>12.4f}{row['engine_wall']['median_ms']:>13.4f}"
            f"{row['minimal_cpu']['median_ms']:>13.4f}{row['minimal_wall']['median_ms']:>14.4f}"
            f"{row['ratio_to_minimal']:>8.2f}{row['free_firms_at_end']:>12}"
        )
    print(f"growth exponent of the engine over n = 1e3..1e5 (1 = linear): {exponent:.2f}")
    print("social gradient on the aggregative game, ms per iteration (CPU, median):")
    for n, row in social.items():
        print(f"{n:>8}{row['cpu']['median_ms']:>12.4f}")
    result = {
        "single_loop": {str(n): row for n, row in rows.items()},
        "ratio_to_minimal": {str(n): row["ratio_to_minimal"] for n, row in rows.items()},
        "growth_exponent_1e3_to_1e5": exponent,
        "social_gradient": {str(n): row for n, row in social.items()},
        "threads": [list(entry) for entry in threads],
        "repeats": args.repeats,
        "timing": "CPU time (time.process_time) and wall time per iteration; min and median over repeats",
    }
    write_json_atomic(args.json, result)
    print(f"wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
