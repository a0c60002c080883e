"""Cleanup benchmark: can an incentive designer make selfish learners clean the river?

Runs the designers {none, fixed_bonus, rl_planner, meta_gradient} and the
``collective_reward`` reference on the ``7x7`` (2 agents) and ``10x10`` (3 agents) presets
of ``cleanup_v0`` (:mod:`incentive_envs.cleanup.game`) over several seeds, and measures the
throughput of the batched core beside the PettingZoo env and a naive per-game Python loop.

The followers are the same in every run of a seed: one independent softmax REINFORCE
learner per agent (:class:`agents.policy_gradient.PolicyGradientLearners`, linear in the
flattened one-hot global observation, per-step baseline, discount 0.95, entropy bonus 0.01,
learning rate 0.1), one step per batch of 32 episodes of 50 steps. The designers and the
reference:

* ``none``: no incentive (:class:`agents.policy_gradient.FixedBonus` with a zero bonus);
* ``fixed_bonus``: :class:`~agents.policy_gradient.FixedBonus` paying every agent a constant
  bonus of 0.3 per waste cell its beam removes, the best of {0.1, 0.3, 1.0} on both maps in
  800-iteration runs on seeds 100 and 101, which the benchmark does not use (at 1.0 the
  followers farm the bonus and stop eating);
* ``rl_planner``: :class:`planners.rl_planner.RLPlanner`, PPO choosing each agent's bonus per
  waste cell cleaned from {0, 0.1, 0.3, 1} every iteration, learning online;
* ``meta_gradient``: :class:`planners.meta_gradient.MetaGradientDesigner` pricing each waste
  cell an agent cleans by an incentive MLP of the global state and joint action (64 tanh
  units, at most ``R_max = 1`` per cell, constant start at 0.5 per cell, Adam 0.01) trained by
  differentiating through the followers' learning step. Pricing events (``pay_per="event"``)
  rather than paying every step makes the designers pay for the same act and differ in how
  they set the price (LIO's incentive on Cleanup also keys on cleaning, through its input of
  whether the other agent cleaned; Yang et al. 2020). The learning rate and the start price
  were chosen in 800-iteration runs on seeds 100 and 101: from a start price of 0.05 the
  return stayed near that of ``none`` (about 14 on 7x7), and paying every step (the
  designer's default) reached 12.8 and 17.3 on 7x7, 16.5 and 28.7 on 10x10;
* ``collective_reward`` (a reference, not a designer):
  :class:`~agents.policy_gradient.CollectiveReward` makes the agents share their apples
  equally (budget-balanced transfers), so each learner maximises the collective return
  itself: what these followers reach when their objective is the planner's.

The planner objective is the collective environment return per episode ``W`` (every
agent's apples), incentives excluded; designers that price incentives maximise
``W − κ · incentive paid`` with ``κ = 0.01`` (``rl_planner``, ``meta_gradient``). A run's
``collective_return`` is ``W`` averaged over the batches of the last 10% of iterations, its
``cleaning_share`` the share of agent-steps spent cleaning (the clean action) over the
same batches, ``waste_cleaned`` the waste cells cleaned per episode. Targets: on both maps
``meta_gradient`` reaches at least twice the collective return of ``none`` and at least
that of ``fixed_bonus``, with agents that clean (at least one waste cell per episode).

For scale, ``scripted`` is the collective return of a hand-written division of labour
(:func:`best_scripted`: agent 0 always cleans, the others eat and help clean while the river
holds many waste cells, with the switching thresholds searched on 600 episodes and the return
measured on 5,000 fresh ones). It is a reference, not a bound: the scripted agents have
fixed roles and remember their mode, which the followers' memoryless policies cannot.
The bound is ``optimum``: the exact optimal expected collective return of any policy
whatever, a centralised controller that sees the whole state, on the ``7x7`` preset
(:class:`incentive_envs.cleanup.optimum.CleanupOptimum`, backward induction over its 19.3
million states; the ``10x10`` preset's 2^40 · C(100, 3) states are out of reach); ``--quick``
solves it for 2-step episodes.

Throughput (one core, random actions): ``batched_agent_steps_per_s`` steps ``B = 1024``
games of the 7x7 map at once through :meth:`~incentive_envs.cleanup.game.CleanupTask.step`;
``pettingzoo_steps_per_s`` steps one ``cleanup_v0`` env (joint steps per second);
``naive_loop_agent_steps_per_s`` steps 64 games one after another with the plain-Python
rules of :mod:`incentive_envs.cleanup.reference`.

Usage: ``python scripts/cleanup.py --json cleanup.json --plot cleanup.png [--seeds 3]
[--quick] [--workers 1]``
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
from tqdm import tqdm

from agents.policy_gradient import CollectiveReward, FixedBonus, PolicyGradientLearners
from incentive_envs import cleanup_v0
from incentive_envs.cleanup.game import (
    CLEAN,
    DOWN,
    LEFT,
    PRESETS,
    RIGHT,
    STAY,
    UP,
    CleanupParams,
    CleanupTask,
)
from incentive_envs.cleanup.optimum import CleanupOptimum
from incentive_envs.cleanup.reference import ReferenceCleanup
from incentive_envs.io import save_figure_atomic, write_json_atomic
from planners.meta_gradient import MetaGradientDesigner
from planners.rl_planner import RLPlanner

MAPS = ("7x7", "10x10")
OPTIMUM_MAPS = ("7x7",)
"""The presets small enough for :class:`CleanupOptimum`."""
DESIGNERS = ("none", "fixed_bonus", "rl_planner", "meta_gradient")
REFERENCES = ("collective_reward",)
"""Runs that are not designers: drawn dotted."""
PLANNERS = DESIGNERS + REFERENCES
LEARNER = {"learning_rate": 0.1, "discount": 0.95, "entropy_coef": 0.01, "time_features": False}
FIXED_BONUS = 0.3
"""Bonus per waste cell cleaned (module docstring)."""
BONUS_LEVELS = (0.0, 0.1, 0.3, 1.0)
COST_WEIGHT = 0.01
META = {
    "designer_lr": 0.01,
    "max_incentive": 1.0,
    "pay_per": "event",
    "incentive_hidden": (64,),
    "constant_start": True,
}
FULL = {"iterations": 800, "batch_size": 32}
QUICK = {"iterations": 20, "batch_size": 8}
CURVE_POINTS = 100
SCRIPTED = {"search_episodes": 600, "episodes": 5000}
QUICK_SCRIPTED = {"search_episodes": 4, "episodes": 8}
QUICK_OPTIMUM_CYCLES = 2
"""``--quick`` solves the optimum of 2-step episodes: the same 19.3 M-state tables, ~15 s."""
THROUGHPUT = {"batch": 1024, "steps": 200, "pettingzoo_steps": 2000, "naive_games": 64, "naive_steps": 20}


def preset_task(map_name: str) -> CleanupTask:
    """The batched Cleanup task of the preset ``map_name`` (one of :data:`MAPS`)."""
    if map_name not in MAPS:
        raise ValueError(f"map_name must be one of {MAPS}, got {map_name!r}")
    return CleanupTask(CleanupParams(**PRESETS[map_name]))


def make_designer(planner: str, map_name: str, seed: int, batch_size: int):
    """The designer ``planner`` with fresh followers on ``map_name``; the followers' initial
    policies depend on the seed only, so every designer of a seed starts from the same ones."""
    if planner not in PLANNERS:
        raise ValueError(f"planner must be one of {PLANNERS}, got {planner!r}")
    task = preset_task(map_name)
    learner_seed, designer_seed = (int(s) for s in np.random.SeedSequence(seed).generate_state(2))
    learners = PolicyGradientLearners(task, seed=learner_seed, **LEARNER)
    if planner == "none":
        return FixedBonus(learners, 0.0, batch_size=batch_size, seed=designer_seed)
    if planner == "fixed_bonus":
        return FixedBonus(learners, FIXED_BONUS, batch_size=batch_size, seed=designer_seed)
    if planner == "collective_reward":
        return CollectiveReward(learners, batch_size=batch_size, seed=designer_seed)
    if planner == "rl_planner":
        return RLPlanner(
            learners,
            batch_size=batch_size,
            bonus_levels=BONUS_LEVELS,
            cost_weight=COST_WEIGHT,
            seed=designer_seed,
        )
    return MetaGradientDesigner(
        learners, batch_size=batch_size, cost_weight=COST_WEIGHT, seed=designer_seed, **META
    )


def run(planner: str, map_name: str, seed: int, iterations: int, batch_size: int, progress=None) -> dict:
    """One training run: its record (module docstring) with a down-sampled learning curve."""
    torch.set_num_threads(1)
    started = time.perf_counter()
    history = make_designer(planner, map_name, seed, batch_size).train(iterations, progress)
    tail = max(1, iterations // 10)
    keep = np.unique(np.linspace(0, iterations - 1, min(CURVE_POINTS, iterations)).astype(int))
    return {
        "map": map_name,
        "planner": planner,
        "seed": seed,
        "collective_return": float(history["welfare"][-tail:].mean()),
        "cleaning_share": float(history["prosocial_share"][-tail:].mean()),
        "waste_cleaned": float(history["prosocial_events"][-tail:].mean()),
        "incentive_paid": float(history["incentive_paid"][-tail:].mean()),
        "episodes": int(history["episodes"][-1]),
        "wall_s": time.perf_counter() - started,
        "curve": {
            "episodes": history["episodes"][keep].tolist(),
            "collective_return": history["welfare"][keep].tolist(),
            "cleaning_share": history["prosocial_share"][keep].tolist(),
        },
    }


def scripted_actions(task: CleanupTask, state, cleaning: np.ndarray) -> np.ndarray:
    """The hand-written policy's joint actions, shape (B, N): an agent in cleaning mode
    (``cleaning[b, i]``) fires when waste lies in its beam, else walks left to column
    ``min(beam_length, width − orchard_width − 1)`` (or further west) and along it to the row
    of the nearest waste, and stays when the river is clean; an agent in eating mode walks to
    the nearest apple (Manhattan distance), or, with none left, into the orchard to the row it
    started on."""
    params, width = task.params, task.params.width
    rows, columns = np.divmod(state.positions, width)
    river_rows = task.river_cells // width
    waste_distance = np.where(
        state.waste[:, None, :], np.abs(river_rows - rows[..., None]), np.iinfo(np.int64).max
    )
    target_row = river_rows[waste_distance.argmin(-1)]
    vertical = np.where(target_row > rows, DOWN, UP)
    reach = min(params.beam_length, width - params.orchard_width - 1)
    clean = np.where(waste_distance.min(-1) > params.beam_radius, vertical, STAY)
    clean = np.where(~state.waste.any(-1, keepdims=True), STAY, clean)
    clean = np.where(columns > reach, LEFT, clean)
    clean = np.where((task.beam[state.positions] & state.waste[:, None, :]).any(-1), CLEAN, clean)
    orchard_rows, orchard_columns = np.divmod(task.orchard_cells, width)
    apple_distance = np.where(
        state.apples[:, None, :],
        np.abs(orchard_rows - rows[..., None]) + np.abs(orchard_columns - columns[..., None]),
        np.iinfo(np.int64).max,
    )
    nearest = apple_distance.argmin(-1)
    any_apple = state.apples.any(-1, keepdims=True)
    goal_row = np.where(any_apple, orchard_rows[nearest], task.start_cells // width)
    goal_column = np.where(any_apple, orchard_columns[nearest], width - 1)
    eat = np.select(
        [goal_column > columns, goal_column < columns, goal_row > rows, goal_row < rows],
        [RIGHT, LEFT, DOWN, UP],
        STAY,
    )
    return np.where(cleaning, clean, eat)


def scripted_return(task: CleanupTask, start: int, stop: int, episodes: int, seed: int) -> float:
    """Mean collective return on ``task`` of the division of labour: agent 0 always cleans, the
    others eat, switching to cleaning when the river holds ``start`` or more waste cells and
    back to eating at ``stop`` or fewer (:func:`scripted_actions`), over ``episodes`` episodes
    seeded by ``seed``."""
    if not isinstance(task, CleanupTask):
        raise ValueError(f"task must be a CleanupTask, got {type(task).__name__}")
    if not 0 <= stop < start:
        raise ValueError(f"the thresholds need 0 <= stop < start, got start={start!r}, stop={stop!r}")
    rng = np.random.default_rng(seed)
    state = task.reset(episodes, rng)
    cleaning = np.zeros((episodes, task.n_agents), dtype=bool)
    cleaning[:, 0] = True
    total = np.zeros(episodes)
    for _ in range(task.max_steps):
        waste = state.waste.sum(-1, keepdims=True)
        helpers = np.where(waste >= start, True, np.where(waste <= stop, False, cleaning[:, 1:]))
        cleaning[:, 1:] = helpers
        state, rewards, _ = task.step(state, scripted_actions(task, state, cleaning), rng)
        total += rewards.sum(-1)
    return float(total.mean())


def best_scripted(map_name: str, search_episodes: int, episodes: int) -> dict:
    """The best switching thresholds of :func:`scripted_return` over every ``0 <= stop <
    start <= n_river`` and ``(n_river + 1, 0)`` (the helpers never clean), searched on
    ``search_episodes`` episodes and re-evaluated on ``episodes`` fresh ones."""
    task = preset_task(map_name)
    n_river = task.river_cells.size
    grid = [(start, stop) for start in range(1, n_river + 1) for stop in range(start)] + [(n_river + 1, 0)]
    scores = [scripted_return(task, start, stop, search_episodes, seed=0) for start, stop in grid]
    start, stop = grid[int(np.argmax(scores))]
    return {
        "start": start,
        "stop": stop,
        "collective_return": scripted_return(task, start, stop, episodes, seed=1),
        "episodes": episodes,
    }


def solve_optimum(map_name: str, max_cycles: int | None = None) -> dict:
    """The optimal expected collective return of any policy on the preset ``map_name`` (one of
    :data:`OPTIMUM_MAPS`), for episodes of ``max_cycles`` steps (default: the preset's)."""
    if map_name not in OPTIMUM_MAPS:
        raise ValueError(
            f"map_name must be one of {OPTIMUM_MAPS} (the others are too large), got {map_name!r}"
        )
    started = time.perf_counter()
    params = CleanupParams(**PRESETS[map_name])
    if max_cycles is not None:
        params = dataclasses.replace(params, max_cycles=max_cycles)
    solved = CleanupOptimum(params)
    return {
        "collective_return": solved.value,
        "max_cycles": params.max_cycles,
        "states": solved.n_states,
        "wall_s": time.perf_counter() - started,
    }


def _rate(function, work: float) -> float:
    started = time.perf_counter()
    function()
    return work / (time.perf_counter() - started)


def throughput(batch: int, steps: int, pettingzoo_steps: int, naive_games: int, naive_steps: int) -> dict:
    """Agent-steps (or env steps) per second of the three implementations (module docstring)."""
    params = CleanupParams(**PRESETS["7x7"])
    task, n_agents = CleanupTask(params), params.n_agents
    rng = np.random.default_rng(0)

    def batched(observe: bool) -> None:
        state = task.reset(batch, rng)
        for _ in range(steps):
            state, _, _ = task.step(state, rng.integers(6, size=(batch, n_agents)), rng)
            if observe:
                task.observe(state)

    env = cleanup_v0.parallel_env(**PRESETS["7x7"])

    def pettingzoo() -> None:
        env.reset(seed=0)
        for _ in range(pettingzoo_steps):
            if not env.agents:
                env.reset()
            env.step({agent: int(rng.integers(6)) for agent in env.agents})

    reference = ReferenceCleanup(params)

    def naive() -> None:
        games = []
        for state in (task.reset(1, rng) for _ in range(naive_games)):
            rows, columns = np.divmod(state.positions[0], params.width)
            waste = {reference.river[k] for k in np.flatnonzero(state.waste[0])}
            games.append(([(int(r), int(c)) for r, c in zip(rows, columns)], waste, set()))
        for _ in range(naive_steps):
            for g, (positions, waste, apples) in enumerate(games):
                actions = [int(a) for a in rng.integers(6, size=n_agents)]
                noise = rng.random(len(reference.orchard) + 1 + len(reference.river))
                games[g] = reference.step(positions, waste, apples, actions, noise)[:3]

    return {
        "batched_agent_steps_per_s": _rate(lambda: batched(False), batch * steps * n_agents),
        "batched_with_observations_agent_steps_per_s": _rate(lambda: batched(True), batch * steps * n_agents),
        "pettingzoo_steps_per_s": _rate(pettingzoo, pettingzoo_steps),
        "naive_loop_agent_steps_per_s": _rate(naive, naive_games * naive_steps * n_agents),
        "setup": {"map": "7x7", "n_agents": n_agents, "batch": batch, "naive_games": naive_games},
    }


def summarise(runs: list[dict]) -> tuple[list[dict], dict]:
    """Mean ± std over seeds per map and planner, and the targets of the module docstring."""
    summary = []
    for map_name in MAPS:
        for planner in PLANNERS:
            mine = [r for r in runs if r["map"] == map_name and r["planner"] == planner]
            if not mine:
                continue
            returns = [r["collective_return"] for r in mine]
            summary.append(
                {
                    "map": map_name,
                    "planner": planner,
                    "collective_return_mean": float(np.mean(returns)),
                    "collective_return_std": float(np.std(returns)),
                    "cleaning_share_mean": float(np.mean([r["cleaning_share"] for r in mine])),
                    "waste_cleaned_mean": float(np.mean([r["waste_cleaned"] for r in mine])),
                    "incentive_paid_mean": float(np.mean([r["incentive_paid"] for r in mine])),
                }
            )
    targets = {}
    for map_name in MAPS:
        means = {s["planner"]: s for s in summary if s["map"] == map_name}
        if {"none", "fixed_bonus", "meta_gradient"} <= set(means):
            meta = means["meta_gradient"]
            targets[map_name] = {
                "meta_at_least_twice_none": meta["collective_return_mean"]
                >= 2 * means["none"]["collective_return_mean"],
                "meta_at_least_fixed_bonus": meta["collective_return_mean"]
                >= means["fixed_bonus"]["collective_return_mean"],
                "meta_agents_clean": meta["waste_cleaned_mean"] >= 1.0,
            }
    return summary, targets


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True)
    parser.add_argument("--plot", required=True)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help=f"smoke test: {QUICK}")
    parser.add_argument("--workers", type=int, default=1, help="runs in parallel processes")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds!r}")
    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers!r}")
    torch.set_num_threads(1)
    settings = QUICK if args.quick else FULL
    scripted_settings = QUICK_SCRIPTED if args.quick else SCRIPTED
    started = time.perf_counter()
    speed = throughput(
        **({key: max(1, value // 50) for key, value in THROUGHPUT.items()} if args.quick else THROUGHPUT)
    )
    print(
        "throughput (agent-steps/s): batched core {batched_agent_steps_per_s:,.0f}, naive Python loop "
        "{naive_loop_agent_steps_per_s:,.0f}; PettingZoo env {pettingzoo_steps_per_s:,.0f} steps/s".format(
            **speed
        )
    )

    scripted = {map_name: best_scripted(map_name, **scripted_settings) for map_name in MAPS}
    print(
        "scripted division of labour (collective return): "
        + ", ".join(f"{m} {record['collective_return']:.2f}" for m, record in scripted.items())
    )

    grid = [
        (map_name, planner, seed) for map_name in MAPS for seed in range(args.seeds) for planner in PLANNERS
    ]
    optimum_cycles = QUICK_OPTIMUM_CYCLES if args.quick else None
    if args.workers == 1:
        optimum = {map_name: solve_optimum(map_name, optimum_cycles) for map_name in OPTIMUM_MAPS}
        runs = []
        with tqdm(total=len(grid) * settings["iterations"], desc="iterations") as bar:
            for map_name, planner, seed in grid:
                runs.append(run(planner, map_name, seed, progress=bar.update, **settings))
    else:
        with ProcessPoolExecutor(args.workers) as pool:
            solving = {m: pool.submit(solve_optimum, m, optimum_cycles) for m in OPTIMUM_MAPS}
            futures = [
                pool.submit(run, planner, map_name, seed, **settings) for map_name, planner, seed in grid
            ]
            runs = [future.result() for future in tqdm(futures, desc="runs")]
            optimum = {map_name: future.result() for map_name, future in solving.items()}
    for map_name, record in optimum.items():
        print(
            f"optimum of any policy on {map_name}, {record['max_cycles']}-step episodes (backward "
            f"induction): {record['collective_return']:.2f} in {record['wall_s']:.0f} s"
        )
    elapsed = time.perf_counter() - started

    summary, targets = summarise(runs)
    print(f"\ncollective return per episode (mean ± std over {args.seeds} seeds, last 10% of iterations)")
    print(f"{'map':<7}{'planner':<19}{'return':>16}{'cleaning':>10}{'cleaned':>9}{'paid':>8}")
    for s in summary:
        value = f"{s['collective_return_mean']:.2f} ± {s['collective_return_std']:.2f}"
        print(
            f"{s['map']:<7}{s['planner']:<19}{value:>16}{s['cleaning_share_mean']:>10.3f}"
            f"{s['waste_cleaned_mean']:>9.2f}{s['incentive_paid_mean']:>8.2f}"
        )
    print(f"\ntargets: {targets}")
    print(f"{len(runs)} runs and the throughput in {elapsed:.0f} s")
    result = {
        "runs": runs,
        "throughput": speed,
        "scripted": scripted,
        "optimum": optimum,
        "summary": summary,
        "targets_met": targets,
        "settings": {
            **settings,
            "seeds": args.seeds,
            "quick": args.quick,
            "workers": args.workers,
            "learner": LEARNER,
            "fixed_bonus": FIXED_BONUS,
            "bonus_levels": BONUS_LEVELS,
            "cost_weight": COST_WEIGHT,
            "scripted": scripted_settings,
            "meta_gradient": {**META, "incentive_hidden": list(META["incentive_hidden"])},
        },
        "wall_time_s": elapsed,
    }
    write_json_atomic(args.json, result)
    _plot(runs, scripted, optimum, args.plot)
    print(f"wrote {args.json} and {args.plot}")
    return result


def _plot(runs: list[dict], scripted: dict, optimum: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, len(MAPS), figsize=(5.4 * len(MAPS), 7.0), squeeze=False)
    for column, map_name in enumerate(MAPS):
        for planner in PLANNERS:
            curves = [r["curve"] for r in runs if r["map"] == map_name and r["planner"] == planner]
            episodes = np.asarray(curves[0]["episodes"])
            for row, key in enumerate(("collective_return", "cleaning_share")):
                values = np.array([curve[key] for curve in curves])
                mean, std = values.mean(axis=0), values.std(axis=0)
                style = ":" if planner in REFERENCES else "-"
                axes[row][column].plot(episodes, mean, style, label=planner)
                axes[row][column].fill_between(episodes, mean - std, mean + std, alpha=0.25)
        axes[0][column].axhline(
            scripted[map_name]["collective_return"], color="grey", linestyle="--", label="scripted"
        )
        if map_name in optimum:
            axes[0][column].axhline(
                optimum[map_name]["collective_return"], color="black", linestyle="-.", label="optimum"
            )
        axes[0][column].set_title(f"Cleanup {map_name}")
        axes[0][column].set_ylabel("collective return per episode")
        axes[1][column].set_ylabel("share of agent-steps cleaning")
        for row in range(2):
            axes[row][column].set_xlabel("follower episodes")
            axes[row][column].ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
    axes[0][0].legend(fontsize=8)
    figure.tight_layout()
    save_figure_atomic(figure, path)
    plt.close(figure)


if __name__ == "__main__":
    main()
