"""Plots of runs (``result.json`` payloads): the comparison figure and sweep summaries.

The comparison figure has three panels: the objective gap against CPU time (log–log: what a
planner costs), the same against iterations with the followers' *played* gap dotted beside it,
and the followers' equilibrium gap on its own. A stop threshold is a horizontal line; an oracle
(or any run whose gap is exactly zero) is a reference line labelled with its value instead of
a dot squashed against the axis.
"""

from __future__ import annotations

import numpy as np

from incentive_envs.io import save_figure_atomic

STYLES = ("-", "--", "-.", ":")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _series(result: dict, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lines = [line for line in result["metrics"] if line.get(key) is not None]
    iterations = np.array([line["iteration"] for line in lines], dtype=float)
    cpu = np.array([line["cpu_time_s"] for line in lines], dtype=float)
    values = np.array([line[key] for line in lines], dtype=float)
    return iterations, cpu, values


def plot_runs(runs: dict[str, dict], path, *, title: str, stop_at_gap: float | None = None) -> None:
    """The comparison figure (module docstring) of ``{name: result}``; runs of episodic games
    (no model, hence no objective gap) get :func:`plot_episodic_runs`."""
    if not any("objective_gap" in line for result in runs.values() for line in result["metrics"]):
        plot_episodic_runs(runs, path, title=title)
        return
    plt = _pyplot()
    figure, (by_time, by_iteration, equilibrium) = plt.subplots(1, 3, figsize=(16, 4.6))
    positive = [
        value
        for result in runs.values()
        for value in _series(result, "objective_gap")[2]
        if value > 0 and np.isfinite(value)
    ]
    floor = 0.3 * min(positive) if positive else 1e-16
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, (name, result) in enumerate(runs.items()):
        color = colors[index % len(colors)]
        iterations, cpu, gap = _series(result, "objective_gap")
        if gap.size and np.all(np.abs(gap) <= floor):  # exact from the start: a reference line
            level = max(float(np.max(np.abs(gap))), floor)
            for axis in (by_time, by_iteration):
                axis.axhline(
                    level, color=color, linestyle=":", linewidth=1.2, label=f"{name} (gap {gap[-1]:.1e})"
                )
            continue
        style = {"color": color, "linestyle": STYLES[index % len(STYLES)], "label": name}
        shown = np.maximum(np.abs(gap), floor)
        by_time.loglog(np.maximum(cpu, 1e-6), shown, **style)
        by_iteration.semilogy(iterations, shown, **style)
        played_iterations, _, played = _series(result, "played_gap")
        if played.size:
            by_iteration.semilogy(
                played_iterations,
                np.maximum(np.abs(played), floor),
                color=color,
                linestyle=":",
                linewidth=0.9,
            )
        equilibrium_iterations, _, distance = _series(result, "equilibrium_gap")
        if distance.size:
            equilibrium.semilogy(equilibrium_iterations, np.maximum(distance, 1e-30), **style)
    if stop_at_gap is not None:
        for axis in (by_time, by_iteration):
            axis.axhline(stop_at_gap, color="black", linewidth=0.8, label=f"stop at {stop_at_gap:g}")
    by_time.set(
        xlabel="CPU time (s, followers + planner)",
        ylabel="objective gap at x*(θ)",
        title="objective gap at the exact equilibrium of the posted incentive",
    )
    by_iteration.set(
        xlabel="iteration",
        ylabel="relative gap",
        title="solid: objective gap; dotted: gap of the followers' play",
    )
    equilibrium.set(xlabel="iteration", ylabel="distance to x*(θ_k)", title="followers' equilibrium gap")
    by_time.legend(fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    save_figure_atomic(figure, path)
    plt.close(figure)


def plot_episodic_runs(runs: dict[str, dict], path, *, title: str) -> None:
    """Episodic runs: the collective return against CPU time and against episodes played, and
    the incentive paid per episode (with the optimum as a line where the task knows it)."""
    plt = _pyplot()
    figure, (by_time, by_episode, paid) = plt.subplots(1, 3, figsize=(16, 4.6))
    optimum = None
    for index, (name, result) in enumerate(runs.items()):
        lines = result["metrics"]
        style = {"linestyle": STYLES[index % len(STYLES)], "label": name}
        cpu = [line["cpu_time_s"] for line in lines]
        episodes = [line["episodes"] for line in lines]
        by_time.plot(cpu, [line["welfare"] for line in lines], **style)
        by_episode.plot(episodes, [line["welfare"] for line in lines], **style)
        paid.plot(episodes, [line["incentive_paid"] for line in lines], **style)
        if lines and "optimality_gap" in lines[-1]:
            gap, welfare = lines[-1]["optimality_gap"], lines[-1]["welfare"]
            optimum = welfare / (1.0 - gap) if gap != 1.0 else optimum
    for axis in (by_time, by_episode):
        if optimum is not None:
            axis.axhline(optimum, color="black", linewidth=0.8, label=f"optimum {optimum:g}")
        axis.set_ylabel("collective environment return per episode")
    by_time.set(xlabel="CPU time (s)", title="followers' collective return")
    by_episode.set(xlabel="follower episodes played", title="the same against experience")
    paid.set(
        xlabel="follower episodes played", ylabel="incentive paid per episode", title="cost of the incentives"
    )
    by_time.legend(fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    save_figure_atomic(figure, path)
    plt.close(figure)


def plot_sweep(rows: list[dict], path, *, title: str) -> None:
    """A bar chart of the final objective gap (mean ± std over seeds) per game × learner × planner
    (cells of episodic games, which have no objective gap, are left out)."""
    rows = [row for row in rows if row["final_objective_gap_mean"] is not None]
    if not rows:
        return
    plt = _pyplot()
    labels = [f"{row['game']}\n{row['learner']}\n{row['planner']}" for row in rows]
    means = np.array([row["final_objective_gap_mean"] for row in rows], dtype=float)
    stds = np.array([row["final_objective_gap_std"] for row in rows], dtype=float)
    figure, axis = plt.subplots(figsize=(max(6.0, 0.75 * len(rows) + 2), 4.6))
    shown = np.maximum(np.abs(means), 1e-16)
    axis.bar(np.arange(len(rows)), shown, yerr=np.minimum(stds, 0.99 * shown), color="tab:blue", alpha=0.8)
    axis.set_yscale("log")
    axis.set_xticks(np.arange(len(rows)), labels, fontsize=7)
    axis.set_ylabel("final objective gap (mean ± std over seeds, floored at 1e-16)")
    axis.set_title(title)
    figure.tight_layout()
    save_figure_atomic(figure, path)
    plt.close(figure)
