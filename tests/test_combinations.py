"""Every valid game × learner × planner of the registries runs through the engine and the CLI's
run path (small instances, a few iterations), and episodic runs resume exactly."""

import json

import numpy as np
import pytest

from planners import ExperimentConfig, run_experiment
from planners.registry import combinations
from planners.registry import spec as planner_spec

GAME_PARAMS = {
    "cournot": {"n_firms": 4, "k": 1.0},
    "aggregative": {"n_agents": 4},
    "oscillators": {"n_agents": 4},
    "congestion": {"network": "braess"},
    "escape_room": {"n_agents": 2, "threshold": 1},
    "cleanup": {},
    "tax_economy": {"n_workers": 6},
}
FAST = {"max_inner": 200, "batch_size": 4}
"""Planner parameters that keep every run short (applied where the planner has them)."""


def _config(game, learner, planner, iterations=3, seed=0):
    params = {key: value for key, value in FAST.items() if key in planner_spec(planner).parameters()}
    return ExperimentConfig(
        game=game,
        learner=learner,
        planner=planner,
        game_params=GAME_PARAMS[game],
        planner_params=params,
        iterations=iterations,
        seed=seed,
    )


def test_every_registered_game_is_exercised():
    assert {game for game, _, _ in combinations()} == set(GAME_PARAMS)


@pytest.mark.parametrize(
    "game, learner, planner", combinations(), ids=["-".join(case) for case in combinations()]
)
def test_every_valid_combination_runs(game, learner, planner):
    result = run_experiment(_config(game, learner, planner), progress=False)
    assert result["iterations"] == 3 and len(result["metrics"]) == 3
    final = result["final"]
    if learner == "policy_gradient":
        assert np.isfinite(final["welfare"]) and final["episodes"] > 0
    else:
        assert np.isfinite(final["objective_gap"]) and final["objective_gap"] >= -1e-9


@pytest.mark.parametrize("planner", ["meta_gradient", "rl_planner", "fixed_bonus", "collective_reward"])
def test_episodic_runs_resume_exactly(planner, tmp_path):
    config = _config("escape_room", "policy_gradient", planner, iterations=12, seed=3)
    uninterrupted = run_experiment(config, progress=False)
    out = tmp_path / "run"
    assert run_experiment(config, out=out, checkpoint_every=5, stop_after=7, progress=False) is None
    assert (out / "state.pt").exists()
    resumed = run_experiment(config, out=out, progress=False)
    strip = lambda result: [  # noqa: E731
        {key: value for key, value in line.items() if not key.endswith("time_s")}
        for line in result["metrics"]
    ]
    assert strip(resumed) == strip(uninterrupted)
    assert (
        json.loads((out / "result.json").read_text())["final"]["episodes"]
        == uninterrupted["final"]["episodes"]
    )
