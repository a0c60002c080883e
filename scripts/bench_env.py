"""Steps per second of ``cournot_v0``: PettingZoo dict API vs the array fast path.

Runs, in one process and interleaved so machine noise hits all of them alike:

* ``pettingzoo_api``: ``env.step(actions_dict)`` of ``cournot_v0.parallel_env`` at n firms;
* ``array_path``: one round of the same game on arrays (feedback ``v_θ(x)``, rewards,
  one projected-gradient learner step), which is what planners and learners use;
* ``reference_rps_v2``: PettingZoo's own ``rps_v2`` parallel env (2 agents), for scale.

Usage: ``python scripts/bench_env.py --json bench_env.json``
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from agents import EuclideanMirrorDescent
from incentive_envs import cournot_v0
from incentive_envs.io import write_json_atomic

SIZES = (2, 100, 1000)


def _rate(step, min_seconds: float) -> float:
    """Steps per second of ``step()`` measured for at least ``min_seconds``."""
    steps, start = 0, time.perf_counter()
    while True:
        for _ in range(50):
            step()
        steps += 50
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return steps / elapsed


def _pettingzoo_step(n: int, rng: np.random.Generator):
    env = cournot_v0.parallel_env(n_firms=n, max_cycles=10**9)
    env.reset(seed=0)
    outputs = rng.uniform(0.0, 1.0, size=(n, 1)).astype(np.float32)
    actions = {agent: outputs[i] for i, agent in enumerate(env.possible_agents)}
    return lambda: env.step(actions)


def _array_step(n: int, rng: np.random.Generator):
    game = cournot_v0.parallel_env(n_firms=n).game
    learner = EuclideanMirrorDescent(game.strategy_set, step_size=1.0 / (n + 2))
    theta = np.zeros(n)
    state = {"x": rng.uniform(0.0, 1.0, size=n), "k": 0}

    def step():
        x = state["x"]
        game.rewards(x, theta)
        state["x"] = learner.step(x, state["k"], game.pseudo_gradient(x, theta))
        state["k"] += 1

    return step


def _rps_step():
    from pettingzoo.classic import rps_v2

    env = rps_v2.parallel_env(max_cycles=10**9)
    env.reset(seed=0)
    actions = {agent: 1 for agent in env.possible_agents}
    return lambda: env.step(actions)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True, help="where to write the results")
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement (default 1)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats; the median is kept")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.repeats < 1:
        raise ValueError(f"--seconds must be > 0 and --repeats >= 1, got {args.seconds!r}, {args.repeats!r}")
    rng = np.random.default_rng(0)
    steppers = {("reference_rps_v2", 2): _rps_step()}
    for n in SIZES:
        steppers[("pettingzoo_api", n)] = _pettingzoo_step(n, rng)
        steppers[("array_path", n)] = _array_step(n, rng)
    samples = {key: [] for key in steppers}
    for _ in range(args.repeats):
        for key, step in steppers.items():
            samples[key].append(_rate(step, args.seconds))
    rate = {key: float(np.median(values)) for key, values in samples.items()}
    reference = rate[("reference_rps_v2", 2)]
    result = {
        "pettingzoo_api": {str(n): rate[("pettingzoo_api", n)] for n in SIZES},
        "array_path": {str(n): rate[("array_path", n)] for n in SIZES},
        "reference_rps_v2": reference,
        "ratio_to_rps_v2": {
            "pettingzoo_api": {str(n): rate[("pettingzoo_api", n)] / reference for n in SIZES},
            "array_path": {str(n): rate[("array_path", n)] / reference for n in SIZES},
        },
        "seconds_per_measurement": args.seconds,
        "repeats": args.repeats,
    }
    print(f"{'n':>6} {'PettingZoo API steps/s':>24} {'array path steps/s':>20} {'array / API':>12}")
    for n in SIZES:
        api, array = rate[("pettingzoo_api", n)], rate[("array_path", n)]
        print(f"{n:>6} {api:>24,.0f} {array:>20,.0f} {array / api:>12.1f}")
    print(f"reference rps_v2 (2 agents): {reference:,.0f} steps/s")
    write_json_atomic(args.json, result)
    print(f"wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
