"""Steps per second of ``cournot_v0``: the PettingZoo dict API and the array path, beside
PettingZoo's own ``rps_v2`` as a yardstick for the machine's speed.

Runs, in one process and interleaved so that machine noise hits all of them alike:

* ``pettingzoo_api``: ``env.step(actions_dict)`` with the default config (no model feedback
  in ``infos``: what an RL library drives);
* ``pettingzoo_api_gradient``: the same with ``feedback=("gradient",)`` (each agent's
  pseudo-gradient in ``infos``: what :func:`agents.play_env` reads);
* ``step_arrays``: :meth:`~incentive_envs.env.IncentiveParallelEnv.step_arrays`, one round on
  arrays (what the vector envs use);
* ``reference_rps_v2``: ``pettingzoo.classic.rps_v2`` (2 agents).

Honest timing: BLAS/OpenMP pinned to one thread (``threadpoolctl``), CPU time
(``time.process_time``) beside wall time, ``--repeats`` interleaved repeats with min and
median. Steps per second are computed from the median CPU time per step; ``ratio_to_rps_v2``
divides by the yardstick's, so runs on busy and quiet machines can be compared.

Usage: ``python scripts/bench_env.py --json bench_env.json``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from incentive_envs import cournot_v0
from incentive_envs.io import check_writable, write_json_atomic

SIZES = (2, 100, 1000)
VARIANTS = ("pettingzoo_api", "pettingzoo_api_gradient", "step_arrays")


def _timed_steps(step, min_seconds: float) -> tuple[float, float]:
    """(CPU µs, wall µs) per call of ``step()``, over batches of 50 for at least ``min_seconds``."""
    steps, cpu, wall = 0, time.process_time(), time.perf_counter()
    while True:
        for _ in range(50):
            step()
        steps += 50
        elapsed = time.perf_counter() - wall
        if elapsed >= min_seconds:
            return 1e6 * (time.process_time() - cpu) / steps, 1e6 * elapsed / steps


def _stepper(variant: str, n: int, rng: np.random.Generator):
    feedback = ("gradient",) if variant == "pettingzoo_api_gradient" else ()
    env = cournot_v0.parallel_env(n_firms=n, max_cycles=10**9, feedback=feedback)
    env.reset(seed=0)
    outputs = rng.uniform(0.0, 1.0, size=(n, 1)).astype(np.float32)
    if variant == "step_arrays":
        return lambda: env.step_arrays(outputs)
    actions = dict(zip(env.possible_agents, outputs))
    return lambda: env.step(actions)


def _rps_stepper():
    from pettingzoo.classic import rps_v2

    env = rps_v2.parallel_env(max_cycles=10**9)
    env.reset(seed=0)
    actions = dict.fromkeys(env.possible_agents, 1)
    return lambda: env.step(actions)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True, help="where to write the results")
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement (default 1)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repeats (min and median kept)")
    args = parser.parse_args(argv)
    if not args.seconds > 0 or args.repeats < 1:
        parser.error(f"--seconds must be > 0 and --repeats >= 1, got {args.seconds!r}, {args.repeats!r}")
    check_writable(args.json, "--json")
    rng = np.random.default_rng(0)
    steppers = {("reference_rps_v2", 2): _rps_stepper()}
    for n in SIZES:
        for variant in VARIANTS:
            steppers[(variant, n)] = _stepper(variant, n, rng)
    samples = {key: ([], []) for key in steppers}
    with threadpool_limits(limits=1):
        threads = sorted({(entry["internal_api"], entry["num_threads"]) for entry in threadpool_info()})
        for _ in range(args.repeats):
            for key, step in steppers.items():
                cpu, wall = _timed_steps(step, args.seconds)
                samples[key][0].append(cpu)
                samples[key][1].append(wall)

    def summary(key) -> dict:
        cpu, wall = (np.asarray(values) for values in samples[key])
        return {
            "cpu_us_per_step": {"min": float(cpu.min()), "median": float(np.median(cpu))},
            "wall_us_per_step": {"min": float(wall.min()), "median": float(np.median(wall))},
            "steps_per_s": 1e6 / float(np.median(cpu)),
        }

    reference = summary(("reference_rps_v2", 2))
    result = {variant: {str(n): summary((variant, n)) for n in SIZES} for variant in VARIANTS}
    result["reference_rps_v2"] = reference
    result["ratio_to_rps_v2"] = {
        variant: {str(n): result[variant][str(n)]["steps_per_s"] / reference["steps_per_s"] for n in SIZES}
        for variant in VARIANTS
    }
    result.update(
        threads=[list(entry) for entry in threads],
        seconds_per_measurement=args.seconds,
        repeats=args.repeats,
        timing="steps/s from the median CPU time per step; CPU and wall µs per step, min and median",
    )
    print(f"cournot_v0 steps/s (median CPU time of {args.repeats}; BLAS threads: {threads})")
    print(f"{'n':>6}" + "".join(f"{variant:>26}" for variant in VARIANTS))
    for n in SIZES:
        print(
            f"{n:>6}"
            + "".join(
                f"{result[variant][str(n)]['steps_per_s']:>16,.0f} ({result['ratio_to_rps_v2'][variant][str(n)]:.2f}×)"
                for variant in VARIANTS
            )
        )
    print(f"reference rps_v2 (2 agents): {reference['steps_per_s']:,.0f} steps/s; (×) = ratio to it")
    write_json_atomic(args.json, result)
    print(f"wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
