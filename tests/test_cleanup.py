"""cleanup_v0: a table of hand-worked rules (moves and collisions, cleaning, eating, apple
regrowth, waste growth, episode end) checked on the batched core and on the plain-Python
reference, the batched step against the single-game step row by row, seeded determinism over
200 steps, PettingZoo conformance, the episodic task, the SB3 vector env (conventions,
seeding, PPO), bad input, the registry, the scripted policy against the exact optimum
(CleanupOptimum itself is tested in test_cleanup_optimum.py) and a smoke run of
scripts/cleanup.py (the meta-gradient on Cleanup is checked against finite differences in
test_meta_gradient.py)."""

import importlib.util
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from pettingzoo.test import api_test, parallel_api_test
from pettingzoo.utils.conversions import parallel_to_aec

from agents.policy_gradient import PolicyGradientLearners
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
from incentive_envs.cleanup.vector import CleanupVecEnv
from incentive_envs.episodic import check_task
from incentive_envs.registry import make, spec
from incentive_envs.testing import identical

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "cleanup.py"
NOTHING = 1.0  # a uniform draw that triggers no random event


def _task(**overrides) -> CleanupTask:
    return CleanupTask(CleanupParams(**{**PRESETS["7x7"], **overrides}))


def _state(task, agents, waste=(), apples=()):
    """A batch of one game from (row, column) lists."""
    width = task.params.width
    cells = [r * width + c for r, c in agents]
    river = [r * width + c for r, c in waste]
    orchard = [r * width + c for r, c in apples]
    return task.make_state(
        np.array([cells]), np.isin(task.river_cells, river)[None], np.isin(task.orchard_cells, orchard)[None]
    )


def _noise(task, apple=NOTHING, event=NOTHING, keys=None):
    """One row of noise: every apple draw ``apple`` (or a list), the waste event, the keys."""
    n_orchard, n_river = task.orchard_cells.size, task.river_cells.size
    apples = np.broadcast_to(np.asarray(apple, dtype=float), (n_orchard,))
    keys = np.zeros(n_river) if keys is None else np.asarray(keys, dtype=float)
    return np.concatenate((apples, [event], keys))[None]


def _cells(task, indices, mask):
    return sorted(divmod(int(cell), task.params.width) for cell in indices[mask])


# name: (parameter overrides, agents, waste, apples, actions, noise, expected positions,
#        expected waste, expected apples, expected rewards, expected cleaned)
RULES = {
    "moves_in_four_directions": (
        {"n_agents": 2},
        [(3, 3), (5, 5)],
        [],
        [],
        [UP, LEFT],
        {},
        [(2, 3), (5, 4)],
        [],
        [],
        [0, 0],
        [0, 0],
    ),
    "down_and_right": (
        {},
        [(3, 3), (0, 5)],
        [],
        [],
        [DOWN, RIGHT],
        {},
        [(4, 3), (0, 6)],
        [],
        [],
        [0, 0],
        [0, 0],
    ),
    "a_move_off_the_grid_stays_put": (
        {},
        [(0, 0), (6, 6)],
        [],
        [],
        [UP, RIGHT],
        {},
        [(0, 0), (6, 6)],
        [],
        [],
        [0, 0],
        [0, 0],
    ),
    "two_agents_targeting_one_cell_both_stay": (
        {},
        [(3, 2), (3, 4)],
        [],
        [],
        [RIGHT, LEFT],
        {},
        [(3, 2), (3, 4)],
        [],
        [],
        [0, 0],
        [0, 0],
    ),
    "a_cell_being_vacated_is_still_blocked": (
        {},
        [(3, 2), (3, 3)],
        [],
        [],
        [RIGHT, RIGHT],
        {},
        [(3, 2), (3, 4)],
        [],
        [],
        [0, 0],
        [0, 0],
    ),
    "no_swaps": ({}, [(3, 2), (3, 3)], [], [], [RIGHT, LEFT], {}, [(3, 2), (3, 3)], [], [], [0, 0], [0, 0]),
    "moving_onto_a_standing_agent_is_blocked": (
        {},
        [(3, 2), (2, 2)],
        [],
        [],
        [UP, STAY],
        {},
        [(3, 2), (2, 2)],
        [],
        [],
        [0, 0],
        [0, 0],
    ),
    "the_beam_covers_three_rows_and_three_columns_ahead": (
        {},
        [(3, 3), (6, 6)],
        [(r, 0) for r in range(7)],
        [],
        [CLEAN, STAY],
        {},
        [(3, 3), (6, 6)],
        [(0, 0), (1, 0), (5, 0), (6, 0)],
        [],
        [0, 0],
        [3, 0],
    ),
    "the_beam_does_not_reach_four_columns": (
        {},
        [(3, 4), (6, 6)],
        [(r, 0) for r in range(7)],
        [],
        [CLEAN, STAY],
        {},
        [(3, 4), (6, 6)],
        [(r, 0) for r in range(7)],
        [],
        [0, 0],
        [0, 0],
    ),
    "the_beam_stops_at_the_grid_edge": (
        {},
        [(0, 2), (6, 6)],
        [(0, 0), (1, 0), (2, 0)],
        [],
        [CLEAN, STAY],
        {},
        [(0, 2), (6, 6)],
        [(2, 0)],
        [],
        [0, 0],
        [2, 0],
    ),
    "overlapping_beams_both_count_shared_cells": (
        {},
        [(2, 1), (3, 2)],
        [(r, 0) for r in range(1, 5)],
        [],
        [CLEAN, CLEAN],
        {},
        [(2, 1), (3, 2)],
        [],
        [],
        [0, 0],
        [3, 3],
    ),
    "a_narrow_short_beam": (
        {"beam_length": 1, "beam_radius": 0},
        [(3, 1), (6, 6)],
        [(2, 0), (3, 0), (4, 0)],
        [],
        [CLEAN, STAY],
        {},
        [(3, 1), (6, 6)],
        [(2, 0), (4, 0)],
        [],
        [0, 0],
        [1, 0],
    ),
    "eating_an_apple_pays_one_and_removes_it": (
        {},
        [(2, 5), (4, 5)],
        [(r, 0) for r in range(7)],
        [(2, 6), (5, 6)],
        [RIGHT, STAY],
        {},
        [(2, 6), (4, 5)],
        [(r, 0) for r in range(7)],
        [(5, 6)],
        [1, 0],
        [0, 0],
    ),
    "clean_river_regrows_at_the_full_rate": (
        {},
        [(3, 3), (4, 3)],
        [],
        [],
        [STAY, STAY],
        {"apple": [0.19, 0.21, 0.0, 0.5, 0.99, 0.1, 0.3]},
        [(3, 3), (4, 3)],
        [],
        [(0, 6), (2, 6), (5, 6)],
        [0, 0],
        [0, 0],
    ),
    "regrowth_falls_linearly_with_the_waste_share": (  # d = 2/7: p = 0.2 (0.6 − 2/7) / 0.6 = 0.10476
        {},
        [(3, 3), (4, 3)],
        [(0, 0), (6, 0)],
        [],
        [STAY, STAY],
        {"apple": [0.104, 0.105] + [1.0] * 5},
        [(3, 3), (4, 3)],
        [(0, 0), (6, 0)],
        [(0, 6)],
        [0, 0],
        [0, 0],
    ),
    "full_rate_up_to_the_restoration_threshold": (  # d = 2/7 <= 0.3
        {"restoration_threshold": 0.3},
        [(3, 3), (4, 3)],
        [(0, 0), (6, 0)],
        [],
        [STAY, STAY],
        {"apple": [0.19, 0.21] + [1.0] * 5},
        [(3, 3), (4, 3)],
        [(0, 0), (6, 0)],
        [(0, 6)],
        [0, 0],
        [0, 0],
    ),
    "no_regrowth_at_the_depletion_threshold": (  # d = 5/7 >= 0.6
        {},
        [(3, 3), (4, 3)],
        [(r, 0) for r in range(5)],
        [],
        [STAY, STAY],
        {"apple": 0.0, "event": 0.0},
        [(3, 3), (4, 3)],
        [(r, 0) for r in range(5)],
        [],
        [0, 0],
        [0, 0],
    ),
    "no_apple_grows_under_an_agent": (
        {},
        [(3, 6), (4, 3)],
        [],
        [],
        [STAY, STAY],
        {"apple": 0.0},
        [(3, 6), (4, 3)],
        [],
        [(r, 6) for r in range(7) if r != 3],
        [0, 0],
        [0, 0],
    ),
    "apples_already_there_stay": (
        {},
        [(3, 3), (4, 3)],
        [(r, 0) for r in range(7)],
        [(1, 6)],
        [STAY, STAY],
        {"apple": 0.0},
        [(3, 3), (4, 3)],
        [(r, 0) for r in range(7)],
        [(1, 6)],
        [0, 0],
        [0, 0],
    ),
    "waste_spreads_to_the_clean_cell_with_the_largest_key": (
        {},
        [(3, 3), (4, 3)],
        [(0, 0)],
        [],
        [STAY, STAY],
        {"event": 0.49, "keys": [0.9, 0.1, 0.2, 0.8, 0.3, 0.4, 0.5]},
        [(3, 3), (4, 3)],
        [(0, 0), (3, 0)],
        [],
        [0, 0],
        [0, 0],
    ),
    "no_waste_without_the_event": (
        {},
        [(3, 3), (4, 3)],
        [(0, 0)],
        [],
        [STAY, STAY],
        {"event": 0.5},
        [(3, 3), (4, 3)],
        [(0, 0)],
        [],
        [0, 0],
        [0, 0],
    ),
    "waste_stops_spreading_at_the_depletion_threshold": (
        {},
        [(3, 3), (4, 3)],
        [(r, 0) for r in range(5)],
        [],
        [STAY, STAY],
        {"event": 0.0},
        [(3, 3), (4, 3)],
        [(r, 0) for r in range(5)],
        [],
        [0, 0],
        [0, 0],
    ),
    "cleaning_below_the_threshold_restarts_growth_in_the_same_step": (  # d: 5/7 -> 2/7
        {},
        [(3, 3), (4, 5)],
        [(r, 0) for r in range(5)],
        [],
        [CLEAN, STAY],
        {"apple": [0.1, 1, 1, 1, 1, 1, 1], "event": 0.0, "keys": [0, 0, 0, 0, 0, 0.7, 0.2]},
        [(3, 3), (4, 5)],
        [(0, 0), (1, 0), (5, 0)],
        [(0, 6)],
        [0, 0],
        [3, 0],
    ),
}


@pytest.mark.parametrize("case", RULES.values(), ids=RULES.keys())
def test_hand_worked_rules_on_the_batched_core_and_the_reference(case):
    overrides, agents, waste, apples, actions, noise, positions, new_waste, new_apples, rewards, cleaned = (
        case
    )
    task = _task(**overrides)
    state = _state(task, agents, waste, apples)
    row = _noise(task, **noise)
    new, got_rewards, got_cleaned = task.transition(state, np.array([actions]), row)
    width = task.params.width
    assert [divmod(int(cell), width) for cell in new.positions[0]] == positions
    assert _cells(task, task.river_cells, new.waste[0]) == sorted(new_waste)
    assert _cells(task, task.orchard_cells, new.apples[0]) == sorted(new_apples)
    assert got_rewards[0].tolist() == rewards and got_cleaned[0].tolist() == cleaned
    np.testing.assert_array_equal(task.prosocial_events(state, np.array([actions]))[0], cleaned)
    reference = ReferenceCleanup(task.params)
    got = reference.step(list(agents), set(waste), set(apples), actions, row[0])
    assert got == (positions, set(new_waste), set(new_apples), rewards, cleaned)


def test_the_presets_and_the_layout():
    small, large = _task(), CleanupTask(CleanupParams(**PRESETS["10x10"]))
    assert (small.river_cells.size, small.orchard_cells.size) == (7, 7)
    assert (large.river_cells.size, large.orchard_cells.size) == (20, 20)
    np.testing.assert_array_equal(small.start_cells, [1 * 7 + 5, 5 * 7 + 5])  # beside the orchard
    np.testing.assert_array_equal(large.start_cells, [1 * 10 + 7, 5 * 10 + 7, 8 * 10 + 7])
    rng = np.random.default_rng(0)
    assert small.reset(4, rng).waste.all() and (large.reset(4, rng).waste.sum(axis=1) == 10).all()
    assert not large.reset(4, rng).apples.any()


def test_the_batched_step_equals_the_single_game_step_row_by_row():
    task = CleanupTask(CleanupParams(**PRESETS["10x10"]))
    rng = np.random.default_rng(3)
    state = task.reset(16, rng)
    for _ in range(60):
        actions = rng.integers(6, size=(16, 3))
        noise = task.draw_noise(rng, 16)
        batch, rewards, cleaned = task.transition(state, actions, noise)
        for b in range(16):
            single, single_rewards, single_cleaned = task.transition(
                state.row(b), actions[b : b + 1], noise[b : b + 1]
            )
            for name in ("positions", "waste", "apples"):
                np.testing.assert_array_equal(getattr(single, name)[0], getattr(batch, name)[b])
            np.testing.assert_array_equal(single_rewards[0], rewards[b])
            np.testing.assert_array_equal(single_cleaned[0], cleaned[b])
            np.testing.assert_array_equal(task.observe(state.row(b))[0], task.observe(state)[b])
        state = batch


def _river_and_orchard_policy(step, shape, rng):
    """Random actions pulled towards the river with frequent cleaning for 25 steps, then
    towards the orchard for 25 steps, and so on (exercises beams and eating)."""
    choices = [UP, DOWN, LEFT, LEFT, LEFT, RIGHT, CLEAN, CLEAN, CLEAN]
    if (step // 25) % 2:
        choices = [UP, DOWN, UP, DOWN, RIGHT, RIGHT, RIGHT, LEFT, STAY]
    return rng.choice(choices, size=shape).astype(np.int64)


@pytest.mark.parametrize("preset", list(PRESETS))
def test_the_reference_follows_the_batched_core_for_200_steps(preset):
    task = CleanupTask(CleanupParams(**PRESETS[preset]))
    reference = ReferenceCleanup(task.params)
    rng = np.random.default_rng(11)
    state = task.reset(1, rng)
    width = task.params.width
    game = (
        [divmod(int(cell), width) for cell in state.positions[0]],
        set(_cells(task, task.river_cells, state.waste[0])),
        set(),
    )
    total_cleaned = total_eaten = 0
    for step in range(200):
        actions = _river_and_orchard_policy(step, state.positions.shape, rng)
        noise = task.draw_noise(rng, 1)
        state, rewards, cleaned = task.transition(state, actions, noise)
        *game, ref_rewards, ref_cleaned = reference.step(*game, actions[0].tolist(), noise[0])
        assert game[0] == [divmod(int(cell), width) for cell in state.positions[0]]
        assert game[1] == set(_cells(task, task.river_cells, state.waste[0]))
        assert game[2] == set(_cells(task, task.orchard_cells, state.apples[0]))
        assert ref_rewards == rewards[0].tolist() and ref_cleaned == cleaned[0].tolist()
        total_cleaned, total_eaten = total_cleaned + cleaned.sum(), total_eaten + rewards.sum()
    assert total_cleaned > 10 and total_eaten > 0  # the comparison covered cleaning and eating


def _trace(seed, steps=200, **params):
    env = cleanup_v0.parallel_env(**params)
    rng = np.random.default_rng(seed)
    trace = [env.reset(seed=seed)]
    for _ in range(steps):
        if not env.agents:
            trace.append(env.reset())
        trace.append(env.step({agent: int(rng.integers(6)) for agent in env.agents}))
    return trace


@pytest.mark.parametrize("preset", list(PRESETS))
def test_seeded_determinism_over_200_steps(preset):
    first, second, other = (
        _trace(5, **PRESETS[preset]),
        _trace(5, **PRESETS[preset]),
        _trace(6, **PRESETS[preset]),
    )
    assert len(first) == len(second) == 204  # 200 steps and 4 resets (50-step episodes)
    assert all(identical(a, b) for a, b in zip(first, second))
    assert not all(identical(a, b) for a, b in zip(first, other))
    task = CleanupTask(CleanupParams(**PRESETS[preset]))
    learners = PolicyGradientLearners(task, 0.1, seed=0)
    one, two = (learners.sample(4, np.random.default_rng(9)) for _ in range(2))
    np.testing.assert_array_equal(one.observations, two.observations)
    np.testing.assert_array_equal(one.env_rewards, two.env_rewards)


@pytest.mark.parametrize("view", ["global", "window"])
@pytest.mark.parametrize("preset", list(PRESETS))
def test_pettingzoo_conformance(preset, view):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parallel_api_test(cleanup_v0.parallel_env(**PRESETS[preset], view=view), num_cycles=60)
        api_test(parallel_to_aec(cleanup_v0.parallel_env(**PRESETS[preset], view=view)), num_cycles=60)
    check_task(CleanupTask(CleanupParams(**PRESETS[preset], view=view, max_cycles=20)))


def test_episodes_end_by_truncation_after_max_cycles():
    env = cleanup_v0.parallel_env(max_cycles=3)
    env.reset(seed=0)
    for step in range(3):
        _, _, terminations, truncations, _ = env.step({agent: STAY for agent in env.agents})
        assert not any(terminations.values())
        assert all(truncations.values()) == (step == 2)
    assert env.agents == []
    with pytest.raises(ValueError, match="reset"):
        env.step({"agent_0": STAY, "agent_1": STAY})
    task = _task(max_cycles=4)
    _, _, done = task.step(
        task.reset(3, np.random.default_rng(0)), np.zeros((3, 2), dtype=np.int64), np.random.default_rng(0)
    )
    assert not done.any()
    rollout = PolicyGradientLearners(task, 0.1).sample(3, np.random.default_rng(0))
    assert rollout.alive.all() and rollout.max_steps == 4


def test_observations_global_and_window():
    task = _task()
    state = _state(task, [(0, 1), (3, 3)], waste=[(0, 0), (1, 0)], apples=[(2, 6)])
    global_view = task.observe(state)[0]
    grid = global_view[:, : 4 * 49].reshape(2, 4, 7, 7)
    assert grid[0, 0, 0, 0] == grid[0, 0, 1, 0] == 1 and grid[0, 0].sum() == 2  # waste
    assert grid[1, 1, 2, 6] == 1 and grid[1, 1].sum() == 1  # apples, seen by both
    assert grid[0, 2, 0, 1] == 1 and grid[0, 3, 3, 3] == 1 and grid[1, 2, 3, 3] == 1  # self, others
    np.testing.assert_array_equal(global_view[0, 196:203], np.eye(7)[0])  # own row
    np.testing.assert_array_equal(global_view[0, 203:], np.eye(7)[1])  # own column
    window = CleanupTask(CleanupParams(**PRESETS["7x7"], view="window", view_radius=1))
    observed = window.observe(state)[0]
    assert observed.shape == (2, 5 * 9 + 14)
    channels = observed[0, :45].reshape(5, 3, 3)  # agent 0 at (0, 1): the row above is outside
    np.testing.assert_array_equal(channels[4], [[1, 1, 1], [0, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(channels[0], [[0, 0, 0], [1, 0, 0], [1, 0, 0]])  # waste at (0,0), (1,0)
    assert channels[2, 1, 1] == 1 and channels[3].sum() == 0
    assert observed.dtype == np.float32 and set(np.unique(observed)) <= {0.0, 1.0}


def test_incentives_fixed_and_as_a_function_of_state_and_joint_action():
    calls = []

    def pay_cleaners(state, joint_action):
        calls.append((state.copy(), joint_action.copy()))
        return 1.5 * (joint_action == CLEAN)

    env = cleanup_v0.parallel_env(incentive=pay_cleaners)
    observations, infos = env.reset(seed=0)
    assert set(infos["agent_0"]) == {"env_reward", "incentive", "cleaned", "waste_share"}
    assert infos["agent_0"]["waste_share"] == 1.0 and observations["agent_0"][-1] == 0.0
    observations, rewards, _, _, infos = env.step({"agent_0": CLEAN, "agent_1": LEFT})
    assert rewards == {"agent_0": 1.5, "agent_1": 0.0} and observations["agent_0"][-1] == 1.5
    np.testing.assert_array_equal(calls[0][1], [CLEAN, LEFT])
    assert calls[0][0].shape == env.state_space.shape and calls[0][0][:49].sum() == 7  # all waste
    assert infos["agent_0"]["cleaned"] == 0  # the start cell is out of the river's reach
    env.set_incentive(np.array([0.25, 2.0]))
    _, rewards, _, _, _ = env.step({"agent_0": STAY, "agent_1": STAY})
    assert rewards == {"agent_0": 0.25, "agent_1": 2.0} and env.incentive_paid == 3.75


def test_render_ansi():
    env = cleanup_v0.parallel_env(render_mode="ansi")
    env.reset(seed=0)
    picture = env.render().splitlines()
    assert picture[0].startswith("step 0/50") and picture[2] == "#....0." and picture[6] == "#....1."
    assert cleanup_v0.parallel_env().render() is None


def test_the_vector_env_follows_sb3_conventions_and_matches_the_pettingzoo_env():
    vec = CleanupVecEnv(1, max_cycles=3)
    env = cleanup_v0.parallel_env(max_cycles=3)
    vec.seed(4)
    observations = vec.reset()
    expected, _ = env.reset(seed=4)
    assert vec.reset_infos == [{"waste_share": 1.0}] * 2
    rng = np.random.default_rng(0)
    for episode in range(2):
        for step in range(3):
            np.testing.assert_array_equal(observations, np.stack([expected["agent_0"], expected["agent_1"]]))
            actions = rng.integers(6, size=2)
            observations, rewards, dones, infos = vec.step(actions)
            expected, expected_rewards, _, truncations, _ = env.step(
                dict(zip(env.possible_agents, actions.tolist()))
            )
            np.testing.assert_array_equal(rewards, [expected_rewards["agent_0"], expected_rewards["agent_1"]])
            assert dones.tolist() == [step == 2] * 2
        assert all(info["TimeLimit.truncated"] and info["episode"]["l"] == 3 for info in infos)
        terminal = np.stack([info["terminal_observation"] for info in infos])
        np.testing.assert_array_equal(terminal, np.stack([expected["agent_0"], expected["agent_1"]]))
        assert "terminal_observation" not in vec.reset_infos[0]
        expected, _ = env.reset()
        np.testing.assert_array_equal(observations, np.stack([expected["agent_0"], expected["agent_1"]]))


def test_vector_env_seeding_and_incentives():
    def run(seed):
        vec = CleanupVecEnv(3, incentive=lambda states, joint: 0.5 * (joint == CLEAN))
        vec.seed(seed)
        trace, rng = [vec.reset()], np.random.default_rng(0)
        for _ in range(60):
            trace.extend(vec.step(rng.integers(6, size=6))[:2])
        return trace

    first, second, other = run(1), run(1), run(2)
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))
    vec = CleanupVecEnv(2, incentive=np.array([0.5, 1.0]))
    vec.seed(0)
    vec.reset()
    _, rewards, _, infos = vec.step(np.full(4, STAY))
    np.testing.assert_array_equal(rewards, [0.5, 1.0, 0.5, 1.0])
    assert [info["incentive"] for info in infos] == [0.5, 1.0, 0.5, 1.0]
    assert vec.observation_space.contains(vec.step(np.full(4, STAY))[0][0])


def test_sb3_ppo_trains_reproducibly_on_the_vector_env():
    from stable_baselines3 import PPO

    torch.set_num_threads(1)

    def train(seed):
        model = PPO(
            "MlpPolicy", CleanupVecEnv(4), n_steps=50, batch_size=100, n_epochs=1, seed=seed, device="cpu"
        )
        before = [p.detach().clone() for p in model.policy.parameters()]
        model.learn(400)
        return before, [p.detach().clone() for p in model.policy.parameters()], model

    before, after, model = train(0)
    assert model.num_timesteps >= 400 and len(model.ep_info_buffer) >= 8  # "episode" infos seen
    assert any(not torch.equal(a, b) for a, b in zip(before, after))
    _, again, _ = train(0)
    assert all(torch.equal(a, b) for a, b in zip(after, again))


@pytest.mark.parametrize(
    "params, match",
    [
        ({"height": 2}, "height"),
        ({"height": 65}, "height"),
        ({"height": 7.0}, "height"),
        ({"width": True}, "width"),
        ({"width": 3, "river_width": 1, "orchard_width": 2}, "width"),
        ({"n_agents": 8}, "n_agents"),
        ({"n_agents": 0}, "n_agents"),
        ({"river_width": 0}, "river_width"),
        ({"orchard_width": "1"}, "orchard_width"),
        ({"beam_length": 0}, "beam_length"),
        ({"apple_respawn_prob": 1.5}, "apple_respawn_prob"),
        ({"waste_spawn_prob": np.nan}, "waste_spawn_prob"),
        ({"restoration_threshold": 0.6}, "restoration_threshold"),
        ({"initial_waste": -0.1}, "initial_waste"),
        ({"max_cycles": 0}, "max_cycles"),
        ({"view": "ego"}, "view"),
        ({"view_radius": 0}, "view_radius"),
        ({"max_incentive": 0.0}, "max_incentive"),
        ({"incentive": np.ones(3)}, "shape"),
        ({"incentive": np.array([-0.5, 0.0])}, r"incentive\[0\]"),
        ({"incentive": np.array([0.0, 2.5])}, r"incentive\[1\]"),
        ({"render_mode": "rgb_array"}, "render_mode"),
        ({"walls": True}, "walls"),
    ],
)
def test_bad_map_sizes_parameters_and_incentives_raise_value_errors(params, match):
    with pytest.raises(ValueError, match=match):
        cleanup_v0.parallel_env(**params)


@pytest.mark.parametrize(
    "action",
    [6, -1, 1.0, np.float32(2.0), True, np.array([1]), "clean", None],
    ids=["6", "-1", "float", "float32", "bool", "array", "str", "None"],
)
def test_bad_actions_raise_value_errors_naming_the_agent(action):
    env = cleanup_v0.parallel_env()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="agent_1"):
        env.step({"agent_0": STAY, "agent_1": action})


def test_bad_batched_inputs_raise_value_errors_and_change_nothing():
    task = _task()
    state = task.reset(2, np.random.default_rng(0))
    before = (state.positions.copy(), state.waste.copy(), state.apples.copy())
    good = np.zeros((2, 2), dtype=np.int64)
    noise = task.draw_noise(np.random.default_rng(0), 2)
    for actions, match in [
        (np.array([[0, 6], [0, 0]]), r"actions\[0, 1\] = 6"),
        (good.astype(float), "integer"),
        (np.zeros((2, 3), dtype=np.int64), "shape"),
    ]:
        with pytest.raises(ValueError, match=match):
            task.transition(state, actions, noise)
        with pytest.raises(ValueError, match=match):
            task.incentive_features(state, actions)
    with pytest.raises(ValueError, match="noise"):
        task.transition(state, good, noise[:, :-1])
    with pytest.raises(ValueError, match="rng"):
        task.step(state, good, 42)
    np.testing.assert_array_equal(state.positions, before[0])
    np.testing.assert_array_equal(state.waste, before[1])
    with pytest.raises(ValueError, match="distinct"):
        task.make_state(np.array([[3, 3]]), np.zeros((1, 7), bool), np.zeros((1, 7), bool))
    with pytest.raises(ValueError, match="waste"):
        task.make_state(np.array([[3, 4]]), np.zeros((1, 6), bool), np.zeros((1, 7), bool))
    with pytest.raises(ValueError, match="positions"):
        task.make_state(np.array([[3, 49]]), np.zeros((1, 7), bool), np.zeros((1, 7), bool))
    with pytest.raises(ValueError, match="params"):
        CleanupTask({"height": 7})


def test_bad_incentive_function_outputs_and_vector_env_input_raise_value_errors():
    env = cleanup_v0.parallel_env(incentive=lambda state, joint_action: np.ones(3))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="incentive_fn"):
        env.step({"agent_0": STAY, "agent_1": STAY})
    vec = CleanupVecEnv(2, incentive=lambda states, joint: np.ones((2, 3)))
    vec.reset()
    with pytest.raises(ValueError, match="incentive_fn"):
        vec.step(np.zeros(4, dtype=np.int64))
    with pytest.raises(ValueError, match="incentive"):
        CleanupVecEnv(2, incentive=np.ones(5))
    with pytest.raises(ValueError, match="n_games"):
        CleanupVecEnv(0)
    vec = CleanupVecEnv(2)
    vec.reset()
    with pytest.raises(ValueError, match="actions"):
        vec.step(np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="set_attr|frozen"):
        vec.set_attr("height", 9)
    assert vec.get_attr("height") == [7] * 4 and vec.env_is_wrapped(object) == [False] * 4


def test_cleanup_is_registered_as_an_episodic_env():
    entry = spec("cleanup_v0")
    assert entry.capabilities == frozenset({"episodic", "bonus"}) and spec("cleanup") is entry
    env = make("cleanup", **PRESETS["10x10"])
    assert env.possible_agents == ["agent_0", "agent_1", "agent_2"]
    task = entry.make_game(**PRESETS["10x10"])
    assert isinstance(task, CleanupTask) and task.n_agents == 3 and task.max_steps == 50
    escape = spec("escape_room_v0").make_game(n_agents=3, threshold=2, max_cycles=4)
    assert (escape.n_agents, escape.threshold, escape.max_steps) == (3, 2, 4)


def _load_script():
    spec = importlib.util.spec_from_file_location("cleanup_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_script_core_runs_every_designer_on_both_maps():
    script = _load_script()
    for map_name in script.MAPS:
        for planner in script.PLANNERS:
            record = script.run(planner, map_name, seed=0, iterations=3, batch_size=2)
            assert {
                "map",
                "planner",
                "seed",
                "collective_return",
                "cleaning_share",
                "episodes",
                "wall_s",
            } <= set(record)
            assert np.isfinite(record["collective_return"]) and 0 <= record["cleaning_share"] <= 1
    with pytest.raises(ValueError, match="planner"):
        script.make_designer("oracle", "7x7", 0, 2)
    with pytest.raises(ValueError, match="map"):
        script.make_designer("none", "5x5", 0, 2)


@pytest.mark.slow
def test_script_quick_run_writes_json_and_plot(tmp_path):
    script = _load_script()
    result = script.main(
        ["--json", str(tmp_path / "c.json"), "--plot", str(tmp_path / "c.png"), "--quick", "--seeds", "1"]
    )
    saved = json.loads((tmp_path / "c.json").read_text())
    assert len(saved["runs"]) == 10 == len(result["runs"])
    assert {"batched_agent_steps_per_s", "pettingzoo_steps_per_s", "naive_loop_agent_steps_per_s"} <= set(
        saved["throughput"]
    )
    assert {r["planner"] for r in saved["runs"]} == {
        "none",
        "fixed_bonus",
        "rl_planner",
        "meta_gradient",
        "collective_reward",
    }
    assert set(saved["scripted"]) == {"7x7", "10x10"}
    assert saved["optimum"]["7x7"]["max_cycles"] == 2
    # the river starts full of waste and a beam first reaches it on step 3: no apple in 2 steps
    assert saved["optimum"]["7x7"]["collective_return"] == 0.0
    assert (tmp_path / "c.png").stat().st_size > 0


def test_helpers_who_switch_to_cleaning_beat_a_lone_cleaner_and_bad_thresholds_are_refused():
    script = _load_script()
    task = script.preset_task("7x7")
    lone_cleaner = script.scripted_return(task, start=8, stop=0, episodes=400, seed=0)  # helpers never clean
    helped = script.scripted_return(task, start=6, stop=1, episodes=400, seed=0)
    assert 20.0 < lone_cleaner < helped
    assert script.scripted_return(task, start=6, stop=1, episodes=50, seed=3) == script.scripted_return(
        task, start=6, stop=1, episodes=50, seed=3
    )
    with pytest.raises(ValueError, match="start"):
        script.scripted_return(task, start=2, stop=2, episodes=4, seed=0)
    with pytest.raises(ValueError, match="map"):
        script.preset_task("5x5")


def test_the_optimum_bounds_the_scripted_division_of_labour():
    script = _load_script()
    params = CleanupParams(**{**PRESETS["7x7"], "height": 4, "max_cycles": 20})
    optimum = CleanupOptimum(params)
    task = CleanupTask(params)
    scripted = [
        script.scripted_return(task, start, stop, episodes=4000, seed=0)
        for start, stop in [(1, 0), (3, 1), (5, 0)]
    ]
    assert max(scripted) < optimum.value < 2 * max(scripted)


def test_scripted_cleaners_fire_only_at_waste_and_eaters_walk_to_the_nearest_apple():
    script = _load_script()
    task = script.preset_task("7x7")
    width = task.params.width
    state = task.reset(1, np.random.default_rng(0))
    cleaning = np.array([[True, False]])
    positions = np.array([[3 * width + 2, 3 * width + 4]])  # (3, 2): beam covers column 0 rows 2-4
    apples = np.zeros_like(state.apples)
    apples[0, 1] = True  # orchard cell (1, 6)
    waste = np.zeros_like(state.waste)
    waste[0, 3] = True  # river cell (3, 0)
    moved = type(state)(positions, waste, apples)
    np.testing.assert_array_equal(script.scripted_actions(task, moved, cleaning), [[CLEAN, RIGHT]])
    waste[0, 3], waste[0, 6] = False, True  # waste at (6, 0): out of reach, walk down
    np.testing.assert_array_equal(script.scripted_actions(task, moved, cleaning), [[DOWN, RIGHT]])
    far = type(state)(np.array([[3 * width + 5, 6 * width + 6]]), waste, apples)
    # the cleaner at (3, 5) walks west to column 3; the eater at (6, 6) walks up to (1, 6)
    np.testing.assert_array_equal(script.scripted_actions(task, far, cleaning), [[LEFT, UP]])
    idle = type(state)(positions, np.zeros_like(waste), np.zeros_like(apples))
    # a clean river: the cleaner stays; no apple: the eater walks into the orchard (column 6)
    np.testing.assert_array_equal(script.scripted_actions(task, idle, cleaning), [[STAY, RIGHT]])
