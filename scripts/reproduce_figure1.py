"""Reproduce the paper's Figure 1: second-best congestion pricing on Sioux Falls.

Algorithm 2 (the implicit-gradient single loop on simplices) sets tolls on the paper's 20
links while travellers (one population per OD pair, ``k`` shortest free-flow paths each)
learn by entropic mirror descent with the mixing step, from noisy path costs. Four
step-size settings (paper §7; SPEC §4):

* A: ``α_k = α/(k+1)^{1/2}``, ``β_k = β/(k+1)^{2/7}``, ``ν_k = ν/(k+1)^{4/7}`` (Theorem 5.5);
* B: as A but ``β_k = β/(k+1)``;
* C: all three ``∝ 1/(k+1)``;
* D: as A without mixing (``ν_k = 0``).

Each setting runs ``--runs`` times with independent Gaussian cost noise. Reported per
iteration: the upper-level optimality gap ``‖θ_k − θ*‖² / ‖θ*‖²`` and the lower-level
equilibrium gap ``Σ_i (d_i / D) KL(x*_i(θ_k) ‖ x_i,k)`` (demand-weighted KL divergence of the
travellers' splits from the logit equilibrium at the current tolls), mean ± std over runs.
``θ*`` is computed to high precision by a double-loop method (L-BFGS-B on ``f*(θ)`` with the
exact implicit hypergradient at exact logit equilibria, :func:`planners.optimal_incentive`).

A run *fails* when its adjoint solve cannot reach the requested accuracy (the map's Jacobian
becomes numerically singular as shares approach 0 — the boundary problem the mixing step
exists to prevent), an iterate stops being finite, or it diverges (optimality gap above
:data:`DIVERGED`, twice that of the start); it is recorded with the failing iteration.

Both travellers and planner start from the untolled status quo: ``θ_0 = 0`` and the logit
equilibrium ``x_0 = x*(0)``. ``time_per_iter_ms`` is the wall time of one single-loop
iteration (learner step, matrix-free GMRES hypergradient, toll step) in setting A;
``dense_time_per_iter_ms`` the planner step with the adjoint solved densely (LU of the
materialised ``I − J_x``), timed in the same process on states sampled along a setting-A run,
where the matrix-free planner step is timed too (cold GMRES, no warm start).

Usage: ``python scripts/reproduce_figure1.py --json fig1.json --plot fig1.png``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from tqdm import tqdm

from agents.learners import EntropicMirrorDescent
from agents.schedules import PowerSchedule
from incentive_envs.io import save_figure_atomic, write_json_atomic
from incentive_envs.routing import SIOUX_FALLS_TOLLED_LINKS, RoutingGame, logit_equilibrium, sioux_falls
from planners import Metric, SingleLoopPlanner, optimal_incentive, simulate
from planners.hypergradient import DenseSolver, KrylovSolver

SETTINGS = {  # powers of (α_k, β_k, ν_k); None: no mixing
    "A": (0.5, 2.0 / 7.0, 4.0 / 7.0),
    "B": (0.5, 1.0, 4.0 / 7.0),
    "C": (1.0, 1.0, 1.0),
    "D": (0.5, 2.0 / 7.0, None),
}
DIVERGED = 2.0
"""A run whose optimality gap exceeds this (twice that of the untolled start θ₀ = 0) diverged."""
COLORS = {"A": "tab:blue", "B": "tab:orange", "C": "tab:green", "D": "tab:red"}


def make_game(eta: float, paths_per_od: int, toll_max: float) -> RoutingGame:
    return RoutingGame(
        sioux_falls(),
        eta=eta,
        tolled_links=SIOUX_FALLS_TOLLED_LINKS,
        toll_bounds=(0.0, toll_max),
        paths_per_od=paths_per_od,
    )


def make_planner_and_learner(game, setting: str, alpha: float, beta: float, nu: float, solver):
    alpha_power, beta_power, nu_power = SETTINGS[setting]
    learner_step = PowerSchedule(beta, beta_power)
    mixing = PowerSchedule(nu, nu_power) if nu_power is not None else 0.0
    learner = EntropicMirrorDescent(game.strategy_set, learner_step, mixing)
    planner = SingleLoopPlanner(game, learner, PowerSchedule(alpha, alpha_power), solver=solver)
    return planner, learner


def equilibrium_gap(game, equilibrium: np.ndarray, x: np.ndarray) -> float:
    """Demand-weighted KL divergence ``Σ_i (d_i/D) KL(x*_i ‖ x_i)``."""
    weight = game.network.demand / game.network.total_demand
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(equilibrium > 0, equilibrium * (np.log(equilibrium) - np.log(x)), 0.0)
    return float(weight @ game.strategy_set.block_sum(terms))


def run_once(game, theta_star, x0, setting, seed, args, eval_points):
    """One run of Algorithm 2 through the engine; the metrics at ``eval_points`` (NaN after a
    failure)."""
    solver = KrylovSolver(rtol=args.solver_rtol, maxiter=args.solver_restarts, restart=200, warm_start=True)
    planner, learner = make_planner_and_learner(game, setting, args.alpha, args.beta, args.nu, solver)
    scale = float(theta_star @ theta_star)
    evaluated = {int(k) + 1: index for index, k in enumerate(eval_points)}  # records count from 1
    optimality = np.full(len(eval_points), np.nan)
    equilibrium_gaps = np.full(len(eval_points), np.nan)
    warm = {"equilibrium": x0}

    def optimality_gap(context, record):
        if record.iteration not in evaluated:
            return None
        return float(np.sum((record.incentive - theta_star) ** 2)) / scale

    def kl_gap(context, record):
        if record.iteration not in evaluated:
            return None
        warm["equilibrium"] = logit_equilibrium(game, record.incentive, start=warm["equilibrium"])
        return equilibrium_gap(game, warm["equilibrium"], record.strategy)

    metrics = (
        Metric("optimality_gap", "‖θ_k − θ*‖² / ‖θ*‖²", optimality_gap),
        Metric("equilibrium_gap", "Σ_i (d_i/D) KL(x*_i(θ_k) ‖ x_i,k)", kl_gap),
    )
    failure, done = None, 0
    records = simulate(
        game,
        learner,
        planner,
        seed=seed,
        noise_std=args.noise,
        x0=x0,
        theta0=np.zeros(game.incentive_set.dim),
        iterations=args.iterations,
        metrics=metrics,
    )
    wall = 0.0
    try:
        for record in records:
            done, wall = record.iteration, record.wall_time_s
            index = evaluated.get(record.iteration)
            if index is None:
                continue
            optimality[index] = record.metrics["optimality_gap"]
            equilibrium_gaps[index] = record.metrics["equilibrium_gap"]
            if optimality[index] > DIVERGED:
                failure = {
                    "iteration": done - 1,
                    "reason": f"diverged: optimality gap {optimality[index]:.3g}",
                }
                break
    except (np.linalg.LinAlgError, FloatingPointError) as error:
        failure = {"iteration": done, "reason": f"{type(error).__name__}: {error}"}
    return {
        "setting": setting,
        "seed": seed,
        "optimality_gap": optimality.tolist(),
        "equilibrium_gap": equilibrium_gaps.tolist(),
        "failure": failure,
        "loop_ms_per_iter": 1e3 * wall / max(done, 1),
    }


def time_adjoint_solves(game, x0, args, samples: int = 6) -> tuple[float, float]:
    """Milliseconds per setting-A planner step with a cold matrix-free GMRES solve and with a
    dense solve, on the same states ``(θ_k, x_{k+1}, k)`` sampled along one run, in this process."""
    solver = KrylovSolver(rtol=args.solver_rtol, maxiter=args.solver_restarts, restart=200, warm_start=True)
    planner, learner = make_planner_and_learner(game, "A", args.alpha, args.beta, args.nu, solver)
    sample_at = set(np.linspace(args.iterations // 10, args.iterations - 1, samples).astype(int).tolist())
    states = [
        (record.responded_to, record.strategy, record.iteration - 1)
        for record in simulate(
            game,
            learner,
            planner,
            seed=0,
            noise_std=args.noise,
            x0=x0,
            iterations=args.iterations,
            metrics=(),
        )
        if record.iteration - 1 in sample_at
    ]
    timings = []
    for solver in (
        KrylovSolver(rtol=args.solver_rtol, maxiter=args.solver_restarts, restart=200),
        DenseSolver(),
    ):
        planner, _ = make_planner_and_learner(game, "A", args.alpha, args.beta, args.nu, solver)
        start = time.perf_counter()
        for theta, x, k in states:
            planner._update(theta, x, k)
        timings.append(1e3 * (time.perf_counter() - start) / len(states))
    return timings[0], timings[1]


def summarise(runs: list[dict], eval_points: list[int]) -> dict:
    settings = {}
    for name in SETTINGS:
        selected = [run for run in runs if run["setting"] == name]
        if not selected:
            continue
        completed = [run for run in selected if run["failure"] is None]
        final_optimality = [run["optimality_gap"][-1] for run in completed]
        final_equilibrium = [run["equilibrium_gap"][-1] for run in completed]
        settings[name] = {
            "runs": len(selected),
            "failed_runs": len(selected) - len(completed),
            "failure_iterations": [run["failure"]["iteration"] for run in selected if run["failure"]],
            "final_optimality_gap_mean": float(np.mean(final_optimality)) if completed else None,
            "final_optimality_gap_std": float(np.std(final_optimality)) if completed else None,
            "final_equilibrium_gap_mean": float(np.mean(final_equilibrium)) if completed else None,
            "final_equilibrium_gap_std": float(np.std(final_equilibrium)) if completed else None,
        }
    return settings


def plot(runs: list[dict], eval_points: list[int], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    iterations = np.asarray(eval_points) + 1
    for name in SETTINGS:
        selected = [run for run in runs if run["setting"] == name]
        if not selected:
            continue
        failed = sum(run["failure"] is not None for run in selected)
        label = f"{name}" + (f" ({failed}/{len(selected)} failed)" if failed else "")
        for axis, key in zip(axes, ("optimality_gap", "equilibrium_gap")):
            values = np.array([run[key] for run in selected], dtype=float)
            with np.errstate(all="ignore"):
                mean, std = np.nanmean(values, axis=0), np.nanstd(values, axis=0)
            if np.all(np.isnan(mean)):
                axis.plot([], [], color=COLORS[name], label=label + " — no iterate")
                continue
            axis.plot(iterations, mean, color=COLORS[name], label=label)
            axis.fill_between(
                iterations, np.maximum(mean - std, 1e-12), mean + std, color=COLORS[name], alpha=0.2
            )
    axes[0].set_ylabel(r"$\|\theta_k - \theta^*\|^2 / \|\theta^*\|^2$")
    axes[0].set_title("upper level: optimality gap")
    axes[1].set_ylabel(r"$\sum_i (d_i/D)\,\mathrm{KL}(x^*_i(\theta_k)\,\|\,x_{i,k})$")
    axes[1].set_title("lower level: equilibrium gap")
    for axis in axes:
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("iteration k")
        axis.legend()
    figure.suptitle("Second-best congestion pricing on Sioux Falls (20 tolled links), mean ± std")
    save_figure_atomic(figure, path)
    plt.close(figure)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write results here (atomically)")
    parser.add_argument("--plot", help="write the figure here (PNG)")
    parser.add_argument("--runs", type=int, default=10, help="runs per setting (default 10)")
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--settings", default="A,B,C,D")
    parser.add_argument("--eta", type=float, default=1.0, help="bounded-rationality weight η (minutes)")
    parser.add_argument("--paths", type=int, default=3, help="shortest free-flow paths per OD pair")
    parser.add_argument("--toll-max", type=float, default=10.0, help="upper toll bound (minutes)")
    parser.add_argument("--noise", type=float, default=1.0, help="std of the Gaussian cost noise (minutes)")
    parser.add_argument("--alpha", type=float, default=3e-4, help="toll step scale α")
    parser.add_argument("--beta", type=float, default=0.1, help="learner step scale β")
    parser.add_argument("--nu", type=float, default=0.02, help="mixing scale ν")
    parser.add_argument("--solver-rtol", type=float, default=1e-6, help="GMRES relative residual")
    parser.add_argument("--solver-restarts", type=int, default=3, help="GMRES(200) restarts before failing")
    parser.add_argument("--eval-points", type=int, default=40, help="log-spaced metric evaluations")
    parser.add_argument("--quick", action="store_true", help="2 runs × 60 iterations (smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.iterations, args.eval_points = 2, 60, 10
    for name in ("runs", "iterations", "eval_points", "paths", "solver_restarts"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    settings = [name.strip() for name in args.settings.split(",")]
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        parser.error(f"unknown settings {unknown}; choose from {sorted(SETTINGS)}")

    wall = time.perf_counter()
    game = make_game(args.eta, args.paths, args.toll_max)
    start = time.perf_counter()
    theta_star = optimal_incentive(game)
    reference_seconds = time.perf_counter() - start
    x0 = logit_equilibrium(game, np.zeros(game.incentive_set.dim))
    eval_points = sorted(set(np.unique(np.geomspace(1, args.iterations, args.eval_points).astype(int) - 1)))
    runs = []
    jobs = [(name, seed) for name in settings for seed in range(args.runs)]
    for name, seed in tqdm(jobs, desc="runs"):
        runs.append(run_once(game, theta_star, x0, name, seed, args, eval_points))
    matrix_free_ms, dense_ms = time_adjoint_solves(game, x0, args)
    summary = summarise(runs, eval_points)
    loop_ms = [run["loop_ms_per_iter"] for run in runs if run["setting"] == "A" and run["failure"] is None]
    result = {
        "settings": summary,
        "time_per_iter_ms": float(np.mean(loop_ms)) if loop_ms else matrix_free_ms,
        "planner_step_ms_matrix_free": matrix_free_ms,
        "dense_time_per_iter_ms": dense_ms,
        "dense_over_matrix_free": dense_ms / matrix_free_ms,
        "theta_star": theta_star.tolist(),
        "f_star_theta_star": game.equilibrium_social_cost(theta_star),
        "f_star_untolled": game.equilibrium_social_cost(np.zeros(game.incentive_set.dim)),
        "first_best_tstt": game.social_optimum().value,
        "reference_seconds": reference_seconds,
        "eval_iterations": [int(k) for k in eval_points],
        "runs": runs,
        "config": {key: value for key, value in vars(args).items() if key not in ("json", "plot")},
        "wall_s": time.perf_counter() - wall,
    }
    print(
        f"\nθ* by L-BFGS-B double loop in {reference_seconds:.1f} s: TSTT {result['f_star_untolled']:.6g} "
        f"untolled -> {result['f_star_theta_star']:.6g} (first best {result['first_best_tstt']:.6g})"
    )
    print(f"{'setting':8}{'failed':>8}{'final optimality gap':>26}{'final equilibrium gap':>26}")
    for name, row in summary.items():

        def cell(mean, std):
            return "—" if mean is None else f"{mean:.3e} ± {std:.1e}"

        print(
            f"{name:8}{row['failed_runs']:>5}/{row['runs']:<2}"
            f"{cell(row['final_optimality_gap_mean'], row['final_optimality_gap_std']):>26}"
            f"{cell(row['final_equilibrium_gap_mean'], row['final_equilibrium_gap_std']):>26}"
        )
    print(
        f"time per iteration: matrix-free {result['time_per_iter_ms']:.2f} ms "
        f"(planner step alone on sampled states: {matrix_free_ms:.2f} ms), dense {dense_ms:.1f} ms "
        f"-> {result['dense_over_matrix_free']:.0f}x"
    )
    if args.json:
        write_json_atomic(args.json, result)
    if args.plot:
        plot(runs, eval_points, args.plot)
    return result


if __name__ == "__main__":
    main()
