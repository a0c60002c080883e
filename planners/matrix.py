"""The planner-robustness matrix: which planners survive which learning dynamics.

Planners {social gradient, implicit-gradient single loop, SPSA, no incentive, oracle} ×
learning dynamics {gradient play, best response, logit best response, Hedge, gradient play
with noisy feedback} on the price games (Cournot with ``k = 1``, the aggregative game, the
coupled oscillators), over several seeds — a sweep (:mod:`planners.sweep`) with the settings
below, each fixed per game and documented so every cell is reproducible:

* gradient learners: step ``1/‖∂v/∂x‖₂`` at the start; noisy gradient play adds ``N(0, 1)``
  to every feedback coordinate;
* best response: inertia 0.1; logit best response: temperature 0.01, inertia 0.2; Hedge:
  learning rate 1; both on 2001 evenly spaced actions per agent;
* social gradient: α = 0.02; single loop: α = 1 (constant), differentiating the gradient
  learners' own map and, for the other dynamics, projected gradient play with step
  ``1/‖∂v/∂x‖₂`` as the planner's model of the followers; SPSA: perturbation 0.5, 10 follower
  iterations per probe and gain 0.3 (1.0 on the oscillators), the best of {0.1, 0.3, 1} in a
  calibration run.

Per cell: the final objective gap (mean over seeds) and the first evaluated iteration at
which it is at most 1% (worst seed), written as JSON with a heatmap per game.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from incentive_envs.io import save_figure_atomic, write_json_atomic
from planners.sweep import Trial, plan_trials, run_sweep

PLANNERS = ("social_gradient", "single_loop", "zeroth_order", "none", "oracle")
DYNAMICS = ("gradient", "best_response", "logit", "hedge", "noisy_gradient")
"""The matrix's columns: the learners of the registry, plus gradient play with N(0, 1) noise."""
GAME_PARAMS = {"cournot": {"k": 1.0}}
SPSA_GAIN = {"cournot": 0.3, "aggregative": 0.3, "oscillators": 1.0}
NOISE_STD = 1.0


def matrix_trials(games, seeds: int, n: int, iterations: int, eval_every: int) -> list[Trial]:
    """Every trial of the matrix (see the module docstring)."""
    trials = []
    for game in games:
        for dynamics in DYNAMICS:
            noisy = dynamics == "noisy_gradient"
            planned, _ = plan_trials(
                [game],
                ["gradient" if noisy else dynamics],
                PLANNERS,
                seeds,
                n=n,
                iterations=iterations,
                game_params=GAME_PARAMS.get(game, {}),
                learner_params={"step_scale": 1.0},
                planner_params={"gain": SPSA_GAIN.get(game, 0.3)},
                feedback_noise_std=NOISE_STD if noisy else 0.0,
            )
            for trial in planned:
                config = trial.config.__class__(**{**trial.config.to_json(), "metric_every": eval_every})
                key = trial.key.replace(f"-{config.learner}-", f"-{dynamics}-", 1)
                trials.append(Trial(key, config))
    return trials


def run_matrix(
    out: str | os.PathLike,
    *,
    games=("cournot", "aggregative", "oscillators"),
    seeds: int = 3,
    n: int = 20,
    iterations: int = 3000,
    eval_every: int = 25,
    backend: str = "local",
    address: str | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> dict:
    """Run the matrix into ``out`` (its trials, ``matrix.json`` and ``matrix.png``) and print it."""
    trials = matrix_trials(games, seeds, n, iterations, eval_every)
    directory = Path(out)
    summary = run_sweep(
        trials, [], directory, backend=backend, address=address, workers=workers, progress=progress
    )
    by_key = {trial.key: row for trial, row in zip(trials, summary["trials"])}
    import json

    cells = []
    for game in games:
        for planner in PLANNERS:
            for dynamics in DYNAMICS:
                runs = []
                for seed in range(seeds):
                    key = f"{game}-{dynamics}-{planner}-s{seed}"
                    row = by_key[key]
                    if row["status"] != "finished":
                        runs.append(
                            {
                                "final_objective_gap": None,
                                "iterations_to_1pct": None,
                                "error": row.get("error"),
                            }
                        )
                        continue
                    result = json.loads((directory / "trials" / f"{key}.json").read_text())
                    reached = next(
                        (line["iteration"] for line in result["metrics"] if line["objective_gap"] <= 0.01),
                        None,
                    )
                    runs.append(
                        {"final_objective_gap": row["final_objective_gap"], "iterations_to_1pct": reached}
                    )
                gaps = [run["final_objective_gap"] for run in runs if run["final_objective_gap"] is not None]
                reached = [run["iterations_to_1pct"] for run in runs]
                cells.append(
                    {
                        "game": game,
                        "planner": planner,
                        "learner": dynamics,
                        "final_relative_gap": float(np.mean(gaps)) if gaps else None,
                        "iterations_to_1pct": None if None in reached else int(max(reached)),
                        "per_seed": runs,
                    }
                )
    payload = {
        "cells": cells,
        "settings": {
            "n": n,
            "iterations": iterations,
            "seeds": seeds,
            "eval_every": eval_every,
            "games": list(games),
        },
    }
    write_json_atomic(directory / "matrix.json", payload)
    print(matrix_table(payload))
    plot_matrix(payload, directory / "matrix.png")
    print(f"wrote {directory / 'matrix.json'} and {directory / 'matrix.png'}")
    return payload


def matrix_table(payload: dict) -> str:
    """Final objective gap (mean over seeds) / iterations to 1% (worst seed), per game."""
    lines = []
    for game in payload["settings"]["games"]:
        lines.append(f"\n{game}: final objective gap (mean over seeds) / iterations to 1% (worst seed)")
        lines.append(f"{'planner':<16}" + "".join(f"{name:>19}" for name in DYNAMICS))
        for planner in PLANNERS:
            text = []
            for dynamics in DYNAMICS:
                cell = next(
                    c
                    for c in payload["cells"]
                    if (c["game"], c["planner"], c["learner"]) == (game, planner, dynamics)
                )
                gap = "failed" if cell["final_relative_gap"] is None else f"{cell['final_relative_gap']:.1e}"
                text.append(
                    f"{gap}/{'—' if cell['iterations_to_1pct'] is None else cell['iterations_to_1pct']}"
                )
            lines.append(f"{planner:<16}" + "".join(f"{entry:>19}" for entry in text))
    return "\n".join(lines)


def plot_matrix(payload: dict, path) -> None:
    """One heatmap of log10 final gaps per game."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    games = payload["settings"]["games"]
    figure, axes = plt.subplots(1, len(games), figsize=(6.5 * len(games), 4.6), squeeze=False)
    figure.subplots_adjust(wspace=0.55)
    image = None
    for axis, game in zip(axes[0], games):
        values = np.full((len(PLANNERS), len(DYNAMICS)), np.nan)
        for cell in payload["cells"]:
            if cell["game"] == game and cell["final_relative_gap"] is not None:
                gap = max(abs(cell["final_relative_gap"]), 1e-16)
                values[PLANNERS.index(cell["planner"]), DYNAMICS.index(cell["learner"])] = np.log10(gap)
        image = axis.imshow(values, cmap="viridis_r", vmin=-16, vmax=1, aspect="auto")
        axis.set_xticks(range(len(DYNAMICS)), [name.replace("_", "\n") for name in DYNAMICS], fontsize=7)
        axis.set_yticks(range(len(PLANNERS)), PLANNERS, fontsize=8)
        axis.set_title(f"{game}: log10 final objective gap")
        for i in range(len(PLANNERS)):
            for j in range(len(DYNAMICS)):
                label = "—" if np.isnan(values[i, j]) else f"{values[i, j]:.0f}"
                dark = not np.isnan(values[i, j]) and values[i, j] >= -8
                axis.text(
                    j, i, label, ha="center", va="center", fontsize=7, color="white" if dark else "black"
                )
    figure.colorbar(image, ax=axes[0].tolist(), shrink=0.8)
    save_figure_atomic(figure, path)
    plt.close(figure)
