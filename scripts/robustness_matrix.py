"""Planner-robustness matrix: which planners survive which learning dynamics.

Runs planners {social gradient, implicit-gradient single loop, zeroth-order (SPSA), no
incentive, oracle} × learners {projected gradient play, entropic mirror descent (simplex
games only: none of these), best response, logit best response, Hedge, gradient play with
noisy feedback} on Cournot (k = 1), the aggregative game and the coupled oscillators (n = 20
agents each), over several seeds. Per cell it reports the final relative objective gap
``(f(θ, x*(θ)) − f*)/|f*|`` at the planner's incentive estimate (mean over seeds) and the
first iteration at which it is ≤ 1% (checked every ``--eval-every`` iterations; "not
reached" if never), writes JSON and a heatmap per game.

Settings, fixed per game and documented here so every cell is reproducible:

* gradient learners: step ``1/L`` with ``L = ‖∂v/∂x‖₂`` at the start (power iteration);
  noisy gradient play adds ``N(0, 1)`` to every feedback coordinate, step ``1/L``;
* best response: inertia 0.1; logit best response: temperature 0.01, inertia 0.2;
  Hedge: learning rate 1; both on 2001 evenly spaced actions per agent;
* social gradient: α = 0.02; single loop: α = 1 with the learner's step as its map step;
  zeroth order: SPSA with perturbation 0.5, 10 follower iterations per probe and gain 0.3
  (1.0 on the oscillators), the best of {0.1, 0.3, 1} in a calibration run.

Usage: ``python scripts/robustness_matrix.py --json matrix.json --plot matrix.png``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from tqdm import tqdm

from agents import BestResponse, EuclideanMirrorDescent, Hedge, LogitBestResponse, jacobian_norm
from incentive_envs import (
    AggregativeGame,
    AggregativeParams,
    CournotGame,
    CournotParams,
    OscillatorGame,
    OscillatorParams,
)
from incentive_envs.io import save_figure_atomic, write_json_atomic
from planners import NoIncentivePlanner, OraclePlanner, SingleLoopPlanner, ZerothOrderPlanner
from planners.social_gradient import SocialGradientPlanner

PLANNERS = ("social_gradient", "single_loop", "zeroth_order", "none", "oracle")
LEARNERS = (
    "gradient_play",
    "entropic_mirror_descent",
    "best_response",
    "logit_best_response",
    "hedge",
    "noisy_gradient_play",
)
SPSA_GAIN = {"cournot": 0.3, "aggregative": 0.3, "oscillators": 1.0}
NOISE_STD = 1.0


def make_game(name: str, n: int, seed: int):
    if name == "cournot":
        return CournotGame(CournotParams.paper(n=n, k=1.0, seed=seed))
    if name == "aggregative":
        return AggregativeGame(AggregativeParams.default(n=n, seed=seed))
    if name == "oscillators":
        return OscillatorGame(OscillatorParams.default(n=n, seed=seed))
    raise ValueError(f"unknown game {name!r}")


def make_learner(name: str, game, step: float):
    if name in ("gradient_play", "noisy_gradient_play"):
        return EuclideanMirrorDescent(game.strategy_set, step)
    if name == "best_response":
        return BestResponse(0.1)
    if name == "logit_best_response":
        return LogitBestResponse(game.strategy_set, temperature=0.01, step_size=0.2, grid_size=2001)
    if name == "hedge":
        return Hedge(game.strategy_set, learning_rate=1.0, grid_size=2001)
    raise ValueError(f"unknown learner {name!r}")


def make_planner(name: str, game_name: str, game, step: float, rng: np.random.Generator):
    if name == "social_gradient":
        return SocialGradientPlanner(game, 0.02)
    if name == "single_loop":
        return SingleLoopPlanner(game, 1.0, learner_step=step)
    if name == "zeroth_order":
        return ZerothOrderPlanner(game, rng, gain=SPSA_GAIN[game_name], perturbation=0.5, probe_steps=10)
    if name == "none":
        return NoIncentivePlanner(game)
    if name == "oracle":
        return OraclePlanner(game)
    raise ValueError(f"unknown planner {name!r}")


def run_cell(game_name, planner_name, learner_name, seed, n, iterations, eval_every) -> dict:
    """One run; returns the final gap and the first evaluated iteration with gap ≤ 1%."""
    game = make_game(game_name, n, seed)
    rng = np.random.default_rng(seed)
    start = game.strategy_set.project(np.zeros(game.strategy_set.dim))
    step = 1.0 / jacobian_norm(game, start, game.incentive_set.project(np.zeros(game.incentive_set.dim)))
    learner = make_learner(learner_name, game, step)
    planner = make_planner(planner_name, game_name, game, step, rng)
    noise = NOISE_STD if learner_name == "noisy_gradient_play" else 0.0
    f_star = game.social_optimum().value
    theta, x = planner.initial_incentive(), start
    reached, gap = None, np.inf
    for k in range(iterations):
        x = planner.advance_followers(learner, x, theta, k, rng, noise)
        theta = planner.update(theta, x, k)
        if (k + 1) % eval_every == 0 or k + 1 == iterations:
            estimate = planner.incentive_estimate(theta)
            gap = (game.equilibrium_social_cost(estimate) - f_star) / abs(f_star)
            if reached is None and gap <= 0.01:
                reached = k + 1
    return {"final_relative_gap": float(gap), "iterations_to_1pct": reached}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True)
    parser.add_argument("--plot", required=True)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--n", type=int, default=20, help="agents per game")
    parser.add_argument("--iterations", type=int, default=3000)
    parser.add_argument("--eval-every", type=int, default=25)
    parser.add_argument("--games", nargs="+", default=["cournot", "aggregative", "oscillators"])
    args = parser.parse_args(argv)
    for name in ("seeds", "n", "iterations", "eval_every"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)!r}")

    cells, started = [], time.perf_counter()
    grid = [(g, p, lrn) for g in args.games for p in PLANNERS for lrn in LEARNERS]
    for game_name, planner_name, learner_name in tqdm(grid, desc="cells"):
        cell = {"game": game_name, "planner": planner_name, "learner": learner_name, "seeds": args.seeds}
        if learner_name == "entropic_mirror_descent":  # these games have box strategy sets
            cell.update(final_relative_gap=None, iterations_to_1pct=None, applicable=False, per_seed=[])
            cells.append(cell)
            continue
        runs = [
            run_cell(game_name, planner_name, learner_name, seed, args.n, args.iterations, args.eval_every)
            for seed in range(args.seeds)
        ]
        reached = [run["iterations_to_1pct"] for run in runs]
        cell.update(
            applicable=True,
            final_relative_gap=float(np.mean([run["final_relative_gap"] for run in runs])),
            iterations_to_1pct=None if None in reached else int(max(reached)),
            per_seed=runs,
        )
        cells.append(cell)
    elapsed = time.perf_counter() - started

    for game_name in args.games:
        print(
            f"\n{game_name}: final relative objective gap (mean over {args.seeds} seeds) / iterations to 1% (worst seed)"
        )
        print(f"{'planner':<16}" + "".join(f"{learner[:19]:>21}" for learner in LEARNERS))
        for planner_name in PLANNERS:
            row = [c for c in cells if c["game"] == game_name and c["planner"] == planner_name]
            text = []
            for c in row:
                if not c["applicable"]:
                    text.append("n/a")
                else:
                    it = "—" if c["iterations_to_1pct"] is None else str(c["iterations_to_1pct"])
                    text.append(f"{c['final_relative_gap']:.1e}/{it}")
            print(f"{planner_name:<16}" + "".join(f"{t:>21}" for t in text))
    print(f"\n{len(cells)} cells in {elapsed:.0f} s")
    result = {
        "cells": cells,
        "settings": {
            "n": args.n,
            "iterations": args.iterations,
            "seeds": args.seeds,
            "eval_every": args.eval_every,
        },
        "wall_time_s": elapsed,
    }
    write_json_atomic(args.json, result)
    _plot(cells, args.games, args.plot)
    print(f"wrote {args.json} and {args.plot}")
    return result


def _plot(cells, games, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(games), figsize=(6.5 * len(games), 4.6), squeeze=False)
    figure.subplots_adjust(wspace=0.55)
    for axis, game_name in zip(axes[0], games):
        values = np.full((len(PLANNERS), len(LEARNERS)), np.nan)
        for c in cells:
            if c["game"] == game_name and c["applicable"]:
                gap = max(c["final_relative_gap"], 1e-16)
                values[PLANNERS.index(c["planner"]), LEARNERS.index(c["learner"])] = np.log10(gap)
        image = axis.imshow(values, cmap="viridis_r", vmin=-16, vmax=1, aspect="auto")
        axis.set_xticks(range(len(LEARNERS)), [name.replace("_", "\n") for name in LEARNERS], fontsize=7)
        axis.set_yticks(range(len(PLANNERS)), PLANNERS, fontsize=8)
        axis.set_title(f"{game_name}: log10 final relative gap")
        for i in range(len(PLANNERS)):
            for j in range(len(LEARNERS)):
                label = "n/a" if np.isnan(values[i, j]) else f"{values[i, j]:.0f}"
                axis.text(
                    j,
                    i,
                    label,
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="black" if label == "n/a" or values[i, j] < -8 else "white",
                )
    figure.colorbar(image, ax=axes[0].tolist(), shrink=0.8)
    save_figure_atomic(figure, path)
    plt.close(figure)


if __name__ == "__main__":
    main()
