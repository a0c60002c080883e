"""Tax economy (``tax_economy_v0``, SPEC G6): every planner against the exact optimum.

``python scripts/tax_economy.py --json results/tax_economy.json --plot results/tax_economy.png``
runs, for ``--n`` workers (default 1,000) and each instance seed (default 0, 1, 2):

* the exact optimum (:func:`~incentive_envs.tax_economy.game.optimal_schedule`, default search);
* every planner of the issue through the registries and the engine (:func:`planners.engine.simulate`):
  ``free_market``, ``us_federal``, ``saez`` (fixed schedules), ``single_loop`` (implicit
  gradient) and ``zeroth_order`` (SPSA) steering inertial exact-best-response workers on the
  model, ``meta_gradient`` and ``rl_planner`` steering policy-gradient workers on the episodic
  task (:class:`~incentive_envs.tax_economy.task.TaxEconomyTask`), each with the budget of
  :data:`BUDGETS`. ``meta_gradient`` differentiates the workers' fixed point
  (``response="fixed_point"``, :mod:`planners.meta_gradient`), so its workers carry an entropy
  bonus of 0.1 (utility gaps between neighbouring labour levels are about 0.1 at the median
  worker; the soft best response needs ``c > 0``); with the one-step look-ahead of Yang et
  al. (``"response": "one_step"`` in :data:`BUDGETS`, workers without entropy) the rates
  drift to about 0.6 flat and end at 0.60–0.70 of the optimum (``--one-step`` adds that
  ablation as ``meta_gradient_one_step``). Every planner is scored by equality, productivity and equality ×
  productivity at the **exact equilibrium of the schedule it ends with** (what its schedule
  is worth once the workers have adapted), next to its wall and CPU time; episodic planners
  also report ``played``, the objective of the workers' last batch;
* the throughput of the array path (:func:`throughput`) at 10³, 10⁴ and 10⁵ workers, in steps
  per wall second (``throughput``) and per CPU second (``throughput_cpu``);
* the exact equality–productivity frontier of seed 0 (:func:`~incentive_envs.tax_economy.game.pareto_frontier`)
  with every planner's point (mean ± std over seeds), written to ``--plot``.

BLAS/OpenMP pools are pinned to one thread (threadpoolctl) and torch to one thread, so timings
are per core. ``--quick`` is a tiny version (50 workers, short budgets) for the tests.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from agents import EuclideanMirrorDescent
from agents.registry import spec as learner_spec
from incentive_envs.io import write_json_atomic
from incentive_envs.registry import spec as env_spec
from incentive_envs.tax_economy.game import (
    TaxEconomyGame,
    TaxEconomyParams,
    equality,
    optimal_schedule,
    pareto_frontier,
    productivity,
    us_federal_rates,
)
from incentive_envs.validation import check_positive_int, check_scalar
from planners.engine import simulate
from planners.registry import spec as planner_spec

LEARNER_STEP = 100.0
"""Step size of the projected-gradient learner of :func:`throughput` (labour lives in ``[0, 100]``)."""

PLANNERS = ("free_market", "us_federal", "saez", "single_loop", "zeroth_order", "meta_gradient", "rl_planner")
"""Every planner of the issue, in the order of the table."""

BUDGETS = {
    "free_market": {"learner": "best_response", "iterations": 1, "planner": {}},
    "us_federal": {"learner": "best_response", "iterations": 1, "planner": {}},
    "saez": {"learner": "best_response", "iterations": 1, "planner": {}},
    # α_k = α/(k+1) (Theorem 5.4's incentive schedule); α scales like 1/|f| ∝ 1/n
    "single_loop": {
        "learner": "best_response",
        "learner_params": {"step_size": 0.5},
        "iterations": 10_000,
        "planner": {"step_size": 0.3, "step_power": 1.0},
        "per_worker": ("step_size",),
    },
    # SPSA: gain a/(m + 1 + A)^0.602 per unit of eq × prod, probes ±0.05 in every rate
    "zeroth_order": {
        "learner": "best_response",
        "learner_params": {"step_size": 0.5},
        "iterations": 20_000,
        "planner": {"gain": 0.01, "perturbation": 0.05, "probe_steps": 20},
        "per_worker": ("gain",),
    },
    "meta_gradient": {
        "learner": "policy_gradient",
        "learner_params": {"learning_rate": 0.5, "entropy_coef": 0.1},
        "iterations": 300,
        "planner": {"batch_size": 16, "designer_lr": 0.005, "response": "fixed_point"},
    },
    # the ablation of --one-step: Yang et al.'s one-step look-ahead, workers without entropy
    "meta_gradient_one_step": {
        "registry": "meta_gradient",
        "learner": "policy_gradient",
        "learner_params": {"learning_rate": 0.5},
        "iterations": 300,
        "planner": {"batch_size": 16, "designer_lr": 0.002, "response": "one_step"},
    },
    "rl_planner": {
        "learner": "policy_gradient",
        "learner_params": {"learning_rate": 0.5},
        "iterations": 640,
        "planner": {"batch_size": 16},
    },
}
"""Learner, iterations and planner parameters of each planner at n = 1,000 (``per_worker``
parameters are divided by ``n``: the objective grows like ``n``; ``registry`` names the
registered planner when the entry's name is not one). ``--quick`` divides the iterations by
20."""


def throughput(sizes=(1_000, 10_000, 100_000), seconds: float = 1.0) -> dict[int, dict[str, float]]:
    """Steps per second of the array path at each number of workers (see the module docstring).

    Each size is timed for at least ``seconds`` of wall time after one warm-up step. Returns
    ``{n: {"wall": steps per wall second, "cpu": steps per CPU second}}``: the loop is
    single-threaded, so on a busy machine the CPU rate is the speed of one core and the wall
    rate what the machine delivered. A table with the time per step per worker (flat when the
    cost is linear in ``n``) is printed.
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
                start, cpu, steps = time.perf_counter(), time.process_time(), 0
            elif time.perf_counter() - start >= seconds:
                break
        rates[n] = {
            "wall": steps / (time.perf_counter() - start),
            "cpu": steps / max(time.process_time() - cpu, 1e-9),
        }
    print(f"{'workers':>9} {'steps/s wall':>13} {'steps/CPU s':>12} {'ns per worker-step (CPU)':>25}")
    for n, rate in rates.items():
        print(f"{n:>9,} {rate['wall']:>13,.0f} {rate['cpu']:>12,.0f} {1e9 / (rate['cpu'] * n):>25.1f}")
    return rates


def _evaluate(game: TaxEconomyGame, rates: np.ndarray) -> dict:
    """Equality, productivity and their product at the exact equilibrium of ``rates``."""
    coin = game.equilibrium_state(rates).coin
    eq, prod = equality(coin), productivity(coin)
    return {"equality": eq, "productivity": prod, "eq_times_prod": eq * prod, "rates": rates.tolist()}


def run_planner(name: str, n: int, seed: int, scale: float = 1.0) -> dict:
    """One planner on instance ``seed`` with ``n`` workers through the registries and
    :func:`~planners.engine.simulate`, scored at the exact equilibrium of its final schedule."""
    budget = BUDGETS[name]
    params = dict(budget["planner"])
    for key in budget.get("per_worker", ()):
        params[key] = params[key] / n
    follower = learner_spec(budget["learner"])
    game_spec = env_spec("tax_economy")
    game = game_spec.make_game(n_workers=n, instance_seed=seed)
    episodic = follower.feedback == "rollouts"
    played_on = game_spec.make_task(n_workers=n, instance_seed=seed) if episodic else game
    learner = follower.make(played_on, seed, **budget.get("learner_params", {}))
    planner = planner_spec(budget.get("registry", name)).make(played_on, learner, seed, **params)
    iterations = max(1, round(budget["iterations"] * scale))
    wall, cpu = time.perf_counter(), time.process_time()
    for record in simulate(played_on, learner, planner, seed=seed, iterations=iterations, metrics=()):
        pass
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    rates = played_on.schedule if episodic else record.estimate
    row = {"planner": name, "seed": seed, **_evaluate(game, np.asarray(rates, dtype=float))}
    row.update({"wall_s": wall, "cpu_s": cpu, "iterations": iterations})
    if episodic:
        row["played"] = record.metrics["objective"]
    return row


def run(n: int = 1000, seeds=(0, 1, 2), quick: bool = False, one_step: bool = False) -> dict:
    """The whole study (module docstring) as the JSON-ready dict of the issue."""
    scale = 1.0 / 20.0 if quick else 1.0
    search = {"popsize": 4, "maxiter": 10} if quick else {}
    optima, runs, frontier_game = [], [], None
    for seed in seeds:
        game = TaxEconomyGame(TaxEconomyParams.pareto(n, seed=seed))
        wall, cpu = time.perf_counter(), time.process_time()
        optimum = optimal_schedule(game, **search)
        optima.append(
            {
                "seed": seed,
                **_evaluate(game, optimum.rates),
                "wall_s": time.perf_counter() - wall,
                "cpu_s": time.process_time() - cpu,
            }
        )
        if frontier_game is None:
            frontier_game, frontier_start = game, optimum.rates
        for name in PLANNERS + (("meta_gradient_one_step",) if one_step else ()):
            runs.append(run_planner(name, n, seed, scale))
            row = runs[-1]
            print(
                f"seed {seed}  {name:<13} eq×prod {row['eq_times_prod']:>11,.1f}  "
                f"({row['eq_times_prod'] / optima[-1]['eq_times_prod']:.3f} of the optimum)  "
                f"{row['wall_s']:6.1f} s",
                flush=True,
            )
    wall, cpu = time.perf_counter(), time.process_time()
    frontier = pareto_frontier(frontier_game, starts=[frontier_start], samples=64 if quick else 1024)
    frontier_seconds = (time.perf_counter() - wall, time.process_time() - cpu)
    sizes = (100, 1_000, 10_000) if quick else (1_000, 10_000, 100_000)
    rates = throughput(sizes, 0.05 if quick else 1.0)
    return {
        "n_workers": n,
        "seeds": list(seeds),
        "optimum": {key: float(np.mean([row[key] for row in optima])) for key in _VALUES}
        | {"rates": [row["rates"] for row in optima], "per_seed": optima},
        "runs": runs,
        "throughput": {str(size): rate["wall"] for size, rate in rates.items()},
        "throughput_cpu": {str(size): rate["cpu"] for size, rate in rates.items()},
        "frontier": {
            "seed": seeds[0],
            "equality": [point.equality for point in frontier],
            "productivity": [point.productivity for point in frontier],
            "wall_s": frontier_seconds[0],
            "cpu_s": frontier_seconds[1],
        },
        "us_federal_rates": us_federal_rates(frontier_game).tolist(),
    }


_VALUES = ("eq_times_prod", "equality", "productivity")


def plot(results: dict, path: str) -> None:
    """The frontier of seed ``results["frontier"]["seed"]`` with every planner's mean ± std point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 5))
    frontier = results["frontier"]
    axes.plot(
        frontier["equality"], frontier["productivity"], "-", color="0.6", label="exact frontier (seed 0)"
    )
    points = {"optimum": results["optimum"]["per_seed"]}
    for name in dict.fromkeys(row["planner"] for row in results["runs"]):
        points[name] = [row for row in results["runs"] if row["planner"] == name]
    for name, rows in points.items():
        eq = np.array([row["equality"] for row in rows])
        prod = np.array([row["productivity"] for row in rows])
        axes.errorbar(
            eq.mean(),
            prod.mean(),
            xerr=eq.std(),
            yerr=prod.std(),
            fmt="*" if name == "optimum" else "o",
            markersize=12 if name == "optimum" else 7,
            capsize=3,
            label=name,
        )
    axes.set_xlabel("equality 1 − Gini·n/(n−1)")
    axes.set_ylabel("productivity (total coin)")
    axes.set_title(
        f"Tax economy, n = {results['n_workers']}: planners at exact equilibria (mean ± std over seeds)"
    )
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _integers(text: str) -> list[int]:
    try:
        return [int(item) for item in text.split(",")]
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from error


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=None, help="workers (default 1000; 50 with --quick)")
    parser.add_argument("--seeds", type=_integers, default=[0, 1, 2])
    parser.add_argument("--quick", action="store_true", help="a tiny version for the tests")
    parser.add_argument(
        "--one-step", action="store_true", help="also run meta_gradient_one_step (the one-step look-ahead)"
    )
    parser.add_argument("--json", help="where to write the results")
    parser.add_argument("--plot", help="where to write the frontier plot (PNG)")
    args = parser.parse_args(argv)
    n = check_positive_int(args.n if args.n is not None else (50 if args.quick else 1000), "n")
    torch.set_num_threads(1)
    wall, cpu = time.perf_counter(), time.process_time()
    with threadpool_limits(1):
        results = run(n, args.seeds, args.quick, args.one_step)
    results["wall_s"], results["cpu_s"] = time.perf_counter() - wall, time.process_time() - cpu
    best = {}
    for row in results["runs"]:
        best.setdefault(row["planner"], []).append(row["eq_times_prod"])
    print(f"optimum eq×prod (mean over seeds) {results['optimum']['eq_times_prod']:,.1f}")
    for name, values in best.items():
        print(f"  {name:<13} {np.mean(values):>11,.1f} ± {np.std(values):,.1f}")
    print(f"throughput (steps per wall s): {results['throughput']}")
    print(f"throughput (steps per CPU s): {results['throughput_cpu']}")
    print(f"total wall {results['wall_s']:.1f} s, CPU {results['cpu_s']:.1f} s")
    if args.json:
        write_json_atomic(args.json, results)
        print(f"wrote {args.json}")
    if args.plot:
        plot(results, args.plot)
        print(f"wrote {args.plot}")
    return results


if __name__ == "__main__":
    main()
