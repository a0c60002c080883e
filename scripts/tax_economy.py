"""Tax economy (``tax_economy_v0``): array-path throughput and the exact ground truth.

* :func:`throughput` — steps per second of one round on arrays (price-taking feedback
  ``v_θ(l)``, rewards, one projected-gradient learner step) at several numbers of workers,
  under the 2018 US federal rates;
* :func:`ground_truth` — equality, productivity and equality × productivity at the exact
  equilibrium of the free market, the US federal schedule, the Saez schedule and the optimum
  found by :func:`~incentive_envs.tax_economy.game.optimal_schedule`, per instance seed.

Usage: ``python scripts/tax_economy.py throughput --sizes 1000,10000,100000`` or
``python scripts/tax_economy.py ground-truth --n 1000 --seeds 0,1,2 --json ground_truth.json``
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from agents import EuclideanMirrorDescent
from incentive_envs.io import write_json_atomic
from incentive_envs.tax_economy.game import (
    TaxEconomyGame,
    TaxEconomyParams,
    equality,
    free_market_rates,
    optimal_schedule,
    productivity,
    saez_rates,
    us_federal_rates,
)
from incentive_envs.validation import check_positive_int, check_scalar

LEARNER_STEP = 100.0
"""Step size of the projected-gradient learner (labour lives in ``[0, 100]``)."""


def throughput(sizes=(1_000, 10_000, 100_000), seconds: float = 1.0) -> dict[int, float]:
    """Steps per second of the array path at each number of workers (see the module docstring).

    Each size is timed for at least ``seconds`` of wall time after one warm-up step; a table
    with the time per step per worker (flat when the cost is linear in ``n``) is printed.
    """
    seconds = check_scalar(seconds, "seconds", low=0.0, low_inclusive=False)
    sizes = [check_positive_int(n, "sizes[i]", 10**7) for n in sizes]
    rates = {}
    for n in sizes:
        game = TaxEconomyGame(TaxEconomyParams.pareto(max(n, 2), seed=0))
        theta = us_federal_rates(game)
        learner = EuclideanMirrorDescent(game.strategy_set, LEARNER_STEP)
        x = np.random.default_rng(0).uniform(0.0, game.params.max_labour, game.params.n)
        steps, start = 0, None
        while True:
            game.rewards(x, theta)
            x = learner.step(x, steps, game.pseudo_gradient(x, theta))
            steps += 1
            if start is None:  # the first step warms caches up and is not timed
                start, steps = time.perf_counter(), 0
            elif time.perf_counter() - start >= seconds:
                break
        rates[n] = steps / (time.perf_counter() - start)
    print(f"{'workers':>9} {'steps/s':>10} {'µs per step':>12} {'ns per worker-step':>19}")
    for n, rate in rates.items():
        print(f"{n:>9,} {rate:>10,.0f} {1e6 / rate:>12,.1f} {1e9 / (rate * n):>19.1f}")
    return rates


def ground_truth(n: int = 1000, seeds=(0, 1, 2), search_seed: int = 0) -> list[dict]:
    """One row per instance seed and schedule: rates, equality, productivity, eq × prod."""
    rows = []
    for seed in seeds:
        game = TaxEconomyGame(TaxEconomyParams.pareto(n, seed=seed))
        started = time.perf_counter()
        optimum = optimal_schedule(game, seed=search_seed)
        search_seconds = time.perf_counter() - started
        schedules = {
            "free market": free_market_rates(game),
            "US federal 2018": us_federal_rates(game),
            "Saez": saez_rates(game),
            "optimum": optimum.rates,
        }
        for name, rates in schedules.items():
            coin = game.equilibrium_state(rates).coin
            rows.append(
                {
                    "seed": seed,
                    "schedule": name,
                    "rates": [round(float(rate), 4) for rate in rates],
                    "equality": equality(coin),
                    "productivity": productivity(coin),
                    "eq_times_prod": equality(coin) * productivity(coin),
                    "search_seconds": search_seconds if name == "optimum" else None,
                }
            )
    print(f"{'seed':>4}  {'schedule':<16} {'rates':<44} {'equality':>8} {'productivity':>12} {'eq×prod':>10}")
    for row in rows:
        rates = " ".join(f"{rate:.3f}" for rate in row["rates"])
        print(
            f"{row['seed']:>4}  {row['schedule']:<16} {rates:<44} {row['equality']:>8.4f} "
            f"{row['productivity']:>12,.1f} {row['eq_times_prod']:>10,.1f}"
        )
    return rows


def _integers(text: str) -> list[int]:
    try:
        return [int(item) for item in text.split(",")]
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from error


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    speed = commands.add_parser("throughput", help="array-path steps per second")
    speed.add_argument("--sizes", type=_integers, default=[1_000, 10_000, 100_000])
    speed.add_argument("--seconds", type=float, default=1.0)
    truth = commands.add_parser("ground-truth", help="baselines and the optimum at the exact equilibrium")
    truth.add_argument("--n", type=int, default=1000)
    truth.add_argument("--seeds", type=_integers, default=[0, 1, 2])
    truth.add_argument("--json", help="where to write the rows")
    args = parser.parse_args(argv)
    if args.command == "throughput":
        return throughput(args.sizes, args.seconds)
    rows = ground_truth(args.n, args.seeds)
    if args.json:
        write_json_atomic(args.json, rows)
        print(f"wrote {args.json}")
    return rows


if __name__ == "__main__":
    main()
