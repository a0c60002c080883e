"""Escape Room benchmark: can a planner make selfish learners open the door?

Runs planners {meta_gradient, rl_planner, none} on ER(2, 1), ER(3, 2) and ER(5, 2) over
several seeds. The followers are the same in every run: one independent softmax REINFORCE
learner per agent (:class:`agents.policy_gradient.PolicyGradientLearners`, linear in the
one-hot state and time, per-step baseline, learning rate 0.01), one step per batch of 128
episodes. The planners:

* ``meta_gradient``: :class:`planners.meta_gradient.MetaGradientDesigner`, an incentive MLP
  (64 tanh units, ``R_max = 3``, incentive cost ``κ = 0.01``, Adam 0.01) trained by
  differentiating through the followers' learning step;
* ``rl_planner``: :class:`planners.rl_planner.RLPlanner`, PPO choosing each agent's lever
  bonus in {0, 1, 2, 3} every iteration (same ``κ``), learning online;
* ``none``: no incentive (:class:`agents.policy_gradient.FixedBonus` with a zero bonus).

Every run takes the same number of follower iterations (learning steps), each on a fresh
batch of 128 episodes. A run's ``final_welfare`` is the followers' total environment reward
per episode (incentives excluded), averaged over the batches of the last 10% of iterations,
to be compared with the optimum ``10 (N − M) − M``. Targets: ``meta_gradient`` at least 90%
of the optimum on every game, ``none`` at most 10%.

Usage: ``python scripts/escape_room.py --json er.json --plot er.png [--seeds 3] [--quick]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from tqdm import tqdm

from agents.policy_gradient import FixedBonus, PolicyGradientLearners
from incentive_envs.escape_room.game import EscapeRoomTask, optimum
from incentive_envs.io import save_figure_atomic, write_json_atomic
from planners.meta_gradient import MetaGradientDesigner
from planners.rl_planner import RLPlanner

PLANNERS = ("meta_gradient", "rl_planner", "none")
GAMES = ((2, 1), (3, 2), (5, 2))
LEARNER_LR = 0.01
COST_WEIGHT = 0.01
FULL = {"iterations": 1500, "batch_size": 128}
QUICK = {"iterations": 80, "batch_size": 32}
CURVE_POINTS = 150


def run(
    planner: str, n_agents: int, threshold: int, seed: int, iterations: int, batch_size: int, progress=None
):
    """One training run; returns its history (see :meth:`~agents.policy_gradient.IterativeDesigner.train`).

    The followers' initial policies depend on the seed only, so every planner starts from
    the same followers."""
    if planner not in PLANNERS:
        raise ValueError(f"planner must be one of {PLANNERS}, got {planner!r}")
    learner_seed, designer_seed = (int(s) for s in np.random.SeedSequence(seed).generate_state(2))
    learners = PolicyGradientLearners(EscapeRoomTask(n_agents, threshold), LEARNER_LR, seed=learner_seed)
    if planner == "meta_gradient":
        designer = MetaGradientDesigner(
            learners,
            batch_size=batch_size,
            designer_lr=0.01,
            max_incentive=3.0,
            cost_weight=COST_WEIGHT,
            seed=designer_seed,
        )
    elif planner == "rl_planner":
        designer = RLPlanner(learners, batch_size=batch_size, cost_weight=COST_WEIGHT, seed=designer_seed)
    else:
        designer = FixedBonus(learners, 0.0, batch_size=batch_size, seed=designer_seed)
    return designer.train(iterations, progress)


def summarise(history: dict, n_agents: int, threshold: int) -> dict:
    """Final welfare (mean over the last 10% of iterations) and a down-sampled learning curve."""
    welfare = history["welfare"]
    tail = max(1, len(welfare) // 10)
    keep = np.unique(np.linspace(0, len(welfare) - 1, min(CURVE_POINTS, len(welfare))).astype(int))
    best = optimum(n_agents, threshold)
    final = float(welfare[-tail:].mean())
    return {
        "final_welfare": final,
        "optimum": best,
        "fraction_of_optimum": final / best,
        "final_incentive_paid": float(history["incentive_paid"][-tail:].mean()),
        "episodes": int(history["episodes"][-1]),
        "curve": {"episodes": history["episodes"][keep].tolist(), "welfare": welfare[keep].tolist()},
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True)
    parser.add_argument("--plot", required=True)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help=f"smoke test: {QUICK}")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds!r}")
    torch.set_num_threads(1)
    settings = QUICK if args.quick else FULL

    runs, started = [], time.perf_counter()
    grid = [(game, planner, seed) for game in GAMES for planner in PLANNERS for seed in range(args.seeds)]
    with tqdm(total=len(grid) * settings["iterations"], desc="iterations") as bar:
        for (n_agents, threshold), planner, seed in grid:
            run_started = time.perf_counter()
            history = run(planner, n_agents, threshold, seed, progress=bar.update, **settings)
            record = {"env": f"ER({n_agents},{threshold})", "planner": planner, "seed": seed}
            record.update(summarise(history, n_agents, threshold))
            record["wall_s"] = time.perf_counter() - run_started
            runs.append(record)
    elapsed = time.perf_counter() - started

    summary = []
    for n_agents, threshold in GAMES:
        for planner in PLANNERS:
            env = f"ER({n_agents},{threshold})"
            finals = [r["final_welfare"] for r in runs if r["env"] == env and r["planner"] == planner]
            best = optimum(n_agents, threshold)
            summary.append(
                {
                    "env": env,
                    "planner": planner,
                    "final_welfare_mean": float(np.mean(finals)),
                    "final_welfare_std": float(np.std(finals)),
                    "optimum": best,
                    "fraction_of_optimum": float(np.mean(finals)) / best,
                    "min_fraction_of_optimum": float(np.min(finals)) / best,
                }
            )
    meta_ok = all(s["min_fraction_of_optimum"] >= 0.9 for s in summary if s["planner"] == "meta_gradient")
    none_ok = all(s["fraction_of_optimum"] <= 0.1 for s in summary if s["planner"] == "none")

    print(f"\nfinal welfare per episode (mean ± std over {args.seeds} seeds, last 10% of iterations)")
    print(f"{'env':<9}{'planner':<15}{'welfare':>16}{'optimum':>9}{'% of opt':>10}{'worst seed':>12}")
    for s in summary:
        welfare = f"{s['final_welfare_mean']:.2f} ± {s['final_welfare_std']:.2f}"
        print(
            f"{s['env']:<9}{s['planner']:<15}{welfare:>16}{s['optimum']:>9.0f}"
            f"{100 * s['fraction_of_optimum']:>9.1f}%{100 * s['min_fraction_of_optimum']:>11.1f}%"
        )
    print(f"\ntargets: meta_gradient >= 90% on every seed: {meta_ok}; none <= 10%: {none_ok}")
    print(f"{len(runs)} runs in {elapsed:.0f} s")
    result = {
        "runs": runs,
        "summary": summary,
        "targets_met": {"meta_gradient_at_least_90pct": meta_ok, "none_at_most_10pct": none_ok},
        "settings": {
            **settings,
            "seeds": args.seeds,
            "quick": args.quick,
            "learner_lr": LEARNER_LR,
            "cost_weight": COST_WEIGHT,
        },
        "wall_time_s": elapsed,
    }
    write_json_atomic(args.json, result)
    _plot(runs, args.plot)
    print(f"wrote {args.json} and {args.plot}")
    return result


def _plot(runs, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(GAMES), figsize=(5.2 * len(GAMES), 3.8), squeeze=False)
    for axis, (n_agents, threshold) in zip(axes[0], GAMES):
        env = f"ER({n_agents},{threshold})"
        for planner in PLANNERS:
            curves = [r["curve"] for r in runs if r["env"] == env and r["planner"] == planner]
            episodes = np.asarray(curves[0]["episodes"])
            welfare = np.array([curve["welfare"] for curve in curves])
            mean, std = welfare.mean(axis=0), welfare.std(axis=0)
            axis.plot(episodes, mean, label=planner)
            axis.fill_between(episodes, mean - std, mean + std, alpha=0.25)
        axis.axhline(
            optimum(n_agents, threshold), color="black", linestyle="--", linewidth=1, label="optimum"
        )
        axis.set_title(env)
        axis.set_xlabel("follower episodes")
        axis.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
        axis.set_ylabel("welfare per episode")
    axes[0][0].legend(fontsize=8)
    figure.tight_layout()
    save_figure_atomic(figure, path)
    plt.close(figure)


if __name__ == "__main__":
    main()
