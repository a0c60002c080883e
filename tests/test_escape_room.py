"""escape_room_v0: PettingZoo conformance, determinism, hand-worked rules (door threshold,
rewards, termination, truncation), the batched step function, incentives, bad input and
SuperSuit vectorisation."""

import warnings

import numpy as np
import pytest
from pettingzoo.test import api_test, parallel_api_test
from pettingzoo.utils.conversions import parallel_to_aec

from incentive_envs import escape_room_v0
from incentive_envs.escape_room import optimum, step_batch
from incentive_envs.testing import identical

L, S, D = 0, 1, 2  # lever, start, door


@pytest.mark.parametrize("n_agents, threshold", [(2, 1), (5, 2), (4, 3)])
def test_pettingzoo_conformance(n_agents, threshold):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parallel_api_test(escape_room_v0.parallel_env(n_agents=n_agents, threshold=threshold), num_cycles=100)
        api_test(
            parallel_to_aec(escape_room_v0.parallel_env(n_agents=n_agents, threshold=threshold)),
            num_cycles=100,
        )
        api_test(escape_room_v0.env(n_agents=n_agents, threshold=threshold, max_cycles=20), num_cycles=100)


def _rollout(seed, episodes=30):
    env = escape_room_v0.parallel_env(n_agents=4, threshold=2, incentive=np.array([0.0, 1.0, 2.0, 0.5]))
    rng = np.random.default_rng(seed)
    trace = []
    for episode in range(episodes):
        trace.append(env.reset(seed=episode))
        while env.agents:
            trace.append(env.step({agent: int(rng.integers(3)) for agent in env.agents}))
        trace.append((env.social_welfare, env.incentive_paid))
    return trace


def test_determinism_under_a_seed_with_random_actions():
    first, second, other = _rollout(5), _rollout(5), _rollout(6)
    assert len(first) == len(second) and all(identical(a, b) for a, b in zip(first, second))
    assert not (len(first) == len(other) and all(identical(a, b) for a, b in zip(first, other)))


# (N, M, joint actions per step, env rewards of the last step, door open, terminated, truncated)
CASES = {
    "lever_and_door_same_step_ends": (2, 1, [[L, D]], [-1, 10], True, True, False),
    "both_stay": (2, 1, [[S, S]], [0, 0], False, False, False),
    "door_without_lever": (2, 1, [[S, D]], [0, -1], False, False, False),
    "stay_at_closed_door_is_free": (2, 1, [[S, D], [S, D]], [0, 0], False, False, False),
    "stay_on_lever_opens_door": (2, 1, [[L, S], [L, D]], [0, 10], True, True, False),
    "door_open_nobody_walks_through": (2, 1, [[L, S]], [-1, 0], True, False, False),
    "both_on_lever": (2, 1, [[L, L]], [-1, -1], True, False, False),
    "back_to_start_costs": (2, 1, [[L, S], [S, S]], [-1, 0], False, False, False),
    "truncates_after_five_steps": (2, 1, [[S, S]] * 5, [0, 0], False, False, True),
    "lever_pullers_alternate": (2, 1, [[L, S], [S, L], [L, S], [S, L], [L, S]], [-1, -1], True, False, True),
    "m2_one_lever_door_closed": (3, 2, [[L, D, D]], [-1, -1, -1], False, False, False),
    "m2_two_levers_opens": (3, 2, [[L, L, D]], [-1, -1, 10], True, True, False),
    "success_on_last_step_terminates": (2, 1, [[S, S]] * 4 + [[L, D]], [-1, 10], True, True, False),
    "optimum_5_2": (5, 2, [[L, L, D, D, D]], [-1, -1, 10, 10, 10], True, True, False),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_hand_worked_rules(case):
    n_agents, threshold, steps, last_rewards, door_open, terminated, truncated = case
    env = escape_room_v0.parallel_env(n_agents=n_agents, threshold=threshold)
    env.reset(seed=0)
    for joint in steps:
        assert env.agents == env.possible_agents
        observations, rewards, terminations, truncations, infos = env.step(dict(zip(env.agents, joint)))
    assert [rewards[a] for a in env.possible_agents] == last_rewards
    assert all(infos[a]["door_open"] is door_open for a in env.possible_agents)
    assert all(value is terminated for value in terminations.values())
    assert all(value is truncated for value in truncations.values())
    assert (env.agents == []) == (terminated or truncated)
    np.testing.assert_array_equal(env.positions, steps[-1])
    expected = np.zeros((n_agents, 3))
    expected[np.arange(n_agents), steps[-1]] = 1.0
    np.testing.assert_array_equal(env.state(), expected.ravel())
    np.testing.assert_array_equal(observations["agent_1"][:-1], expected.ravel())


def test_optimum_formula_and_the_welfare_of_the_optimal_episode():
    assert optimum(2, 1) == 9.0 and optimum(5, 2) == 28.0 and optimum(10, 9) == 1.0
    for n_agents, threshold in [(2, 1), (5, 2), (6, 5)]:
        env = escape_room_v0.parallel_env(n_agents=n_agents, threshold=threshold)
        env.reset()
        env.step({a: L if i < threshold else D for i, a in enumerate(env.agents)})
        assert env.agents == [] and env.social_welfare == optimum(n_agents, threshold)


def test_optimum_is_the_best_welfare_over_all_episodes_of_er_3_1():
    # Exhaustive search over every joint-action sequence of ER(3, 1) up to 3 steps.
    best, frontier = -np.inf, [(np.full((1, 3), S), 0.0)]
    for _ in range(3):
        next_frontier = []
        for positions, welfare in frontier:
            for joint in np.array(np.meshgrid(*[range(3)] * 3)).T.reshape(-1, 3):
                new, rewards, _, done = step_batch(positions, joint[None], 1)
                total = welfare + rewards.sum()
                best = max(best, total)
                if not done[0]:
                    next_frontier.append((new, total))
        frontier = next_frontier
    assert best == optimum(3, 1) == 19.0


def test_step_batch_matches_the_env_and_handles_batches():
    positions = np.array([[S, S, S], [L, D, S], [D, D, L]])
    actions = np.array([[L, D, S], [L, D, D], [D, S, L]])
    new, rewards, door_open, done = step_batch(positions, actions, 1)
    np.testing.assert_array_equal(new, actions)
    np.testing.assert_array_equal(rewards, [[-1, 10, 0], [0, 10, 10], [10, -1, 0]])
    np.testing.assert_array_equal(door_open, [True, True, True])
    np.testing.assert_array_equal(done, [True, True, True])
    _, rewards, door_open, done = step_batch(positions, actions, 2)
    np.testing.assert_array_equal(rewards, [[-1, -1, 0], [0, 0, -1], [0, -1, 0]])
    assert not door_open.any() and not done.any()
    assert rewards.dtype == np.float64 and new.dtype == np.int64


def test_fixed_incentives_are_paid_every_step_and_reported_separately():
    env = escape_room_v0.parallel_env(n_agents=3, threshold=1, max_incentive=5.0)
    observations, _ = env.reset(options={"incentive": np.array([1.0, 0.0, 2.5])})
    assert all(observations[a][-1] == 0.0 for a in env.agents)
    observations, rewards, _, _, infos = env.step({"agent_0": S, "agent_1": D, "agent_2": S})
    assert rewards == {"agent_0": 1.0, "agent_1": -1.0, "agent_2": 2.5}
    assert [infos[a]["incentive"] for a in env.possible_agents] == [1.0, 0.0, 2.5]
    assert [infos[a]["env_reward"] for a in env.possible_agents] == [0.0, -1.0, 0.0]
    assert [observations[a][-1] for a in env.possible_agents] == [1.0, 0.0, 2.5]
    env.set_incentive(np.zeros(3))
    env.step({"agent_0": L, "agent_1": D, "agent_2": S})
    assert env.incentive_paid == 3.5 and env.social_welfare == 8.0
    env.reset()
    assert env.incentive_paid == 0.0 and env.social_welfare == 0.0


def test_incentive_function_sees_the_state_before_the_move_and_the_joint_action():
    calls = []

    def pay_lever_pullers(state, joint_action):
        calls.append((state.copy(), joint_action.copy()))
        return 3.0 * (joint_action == L)

    env = escape_room_v0.parallel_env(n_agents=2, threshold=1, incentive=pay_lever_pullers)
    env.reset()
    _, rewards, _, _, infos = env.step({"agent_0": L, "agent_1": S})
    np.testing.assert_array_equal(calls[0][0], [0, 1, 0, 0, 1, 0])
    np.testing.assert_array_equal(calls[0][1], [L, S])
    assert rewards == {"agent_0": 2.0, "agent_1": 0.0} and infos["agent_0"]["incentive"] == 3.0
    _, rewards, terminations, _, _ = env.step({"agent_0": L, "agent_1": D})
    np.testing.assert_array_equal(calls[1][0], [1, 0, 0, 0, 1, 0])
    assert rewards == {"agent_0": 3.0, "agent_1": 10.0} and all(terminations.values())
    assert env.incentive_paid == 6.0 and env.social_welfare == 9.0


def test_render_ansi_and_state_space():
    env = escape_room_v0.parallel_env(render_mode="ansi")
    env.reset()
    assert "step 0/5" in env.render() and "door closed" in env.render() and "agent_0@start" in env.render()
    env.step({"agent_0": L, "agent_1": S})
    assert "door open" in env.render() and "agent_0@lever" in env.render()
    assert escape_room_v0.parallel_env().render() is None
    assert env.state() in env.state_space and env.state().dtype == np.float32


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_agents": 1}, "n_agents"),
        ({"n_agents": 2.0}, "n_agents"),
        ({"n_agents": True}, "n_agents"),
        ({"threshold": 0}, "threshold"),
        ({"n_agents": 3, "threshold": 3}, "threshold"),
        ({"threshold": 1.5}, "threshold"),
        ({"max_cycles": 0}, "max_cycles"),
        ({"max_incentive": 0.0}, "max_incentive"),
        ({"max_incentive": np.nan}, "max_incentive"),
        ({"incentive": np.array([1.0, 11.0])}, "incentive"),
        ({"render_mode": "rgb_array"}, "render_mode"),
    ],
)
def test_bad_parameters_raise_value_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        escape_room_v0.parallel_env(**kwargs)


@pytest.mark.parametrize(
    "action",
    [3, -1, 1.0, np.float32(2.0), True, np.array([1]), "door", None],
    ids=["3", "-1", "float", "float32", "bool", "array", "str", "None"],
)
def test_bad_actions_raise_value_errors_naming_the_agent(action):
    env = escape_room_v0.parallel_env()
    env.reset()
    with pytest.raises(ValueError, match="agent_1"):
        env.step({"agent_0": S, "agent_1": action})


def test_missing_unknown_agents_and_stepping_a_finished_episode_raise_value_errors():
    env = escape_room_v0.parallel_env()
    env.reset()
    with pytest.raises(ValueError, match="missing"):
        env.step({"agent_0": S})
    with pytest.raises(ValueError, match="unknown"):
        env.step({"agent_0": S, "agent_1": S, "agent_7": S})
    with pytest.raises(ValueError, match="dict"):
        env.step([S, S])
    env.step({"agent_0": L, "agent_1": D})
    with pytest.raises(ValueError, match="reset"):
        env.step({"agent_0": S, "agent_1": S})


@pytest.mark.parametrize(
    "incentive, match",
    [
        (np.array([1.0, np.nan]), "finite"),
        (np.array([-0.5, 1.0]), r"incentive\[0\]"),
        (np.array([1.0, 10.5]), r"incentive\[1\]"),
        (np.ones(3), "shape"),
        ("free money", "real numbers"),
    ],
)
def test_bad_incentives_raise_value_errors(incentive, match):
    env = escape_room_v0.parallel_env()
    with pytest.raises(ValueError, match=match):
        env.set_incentive(incentive)
    with pytest.raises(ValueError, match=match):
        env.reset(options={"incentive": incentive})


@pytest.mark.parametrize("output", [np.array([1.0, 20.0]), np.array([np.nan, 0.0]), np.ones(5)])
def test_bad_incentive_function_outputs_raise_value_errors(output):
    env = escape_room_v0.parallel_env(incentive=lambda state, joint_action: output)
    env.reset()
    with pytest.raises(ValueError, match="incentive_fn"):
        env.step({"agent_0": S, "agent_1": S})


def test_bad_step_batch_inputs_and_optimum_arguments_raise_value_errors():
    good = np.ones((2, 3), dtype=np.int64)
    with pytest.raises(ValueError, match="positions"):
        step_batch(np.ones(3, dtype=np.int64), good[0], 1)
    with pytest.raises(ValueError, match="actions"):
        step_batch(good, good.astype(float), 1)
    with pytest.raises(ValueError, match=r"actions\[1, 2\] = 3"):
        step_batch(good, np.array([[0, 1, 2], [0, 1, 3]]), 1)
    with pytest.raises(ValueError, match="shape of positions"):
        step_batch(good, np.ones((2, 4), dtype=np.int64), 1)
    with pytest.raises(ValueError, match="threshold"):
        step_batch(good, good, 3)
    with pytest.raises(ValueError, match="threshold"):
        optimum(4, 0)


def test_supersuit_vectorisation_steps():
    import supersuit as ss

    env = escape_room_v0.parallel_env(n_agents=3, threshold=1)
    vec = ss.concat_vec_envs_v1(
        ss.pettingzoo_env_to_vec_env_v1(env), 2, num_cpus=0, base_class="stable_baselines3"
    )
    assert vec.num_envs == 6
    observations = vec.reset()
    assert observations.shape == (6, 10)
    # copy 0: agent_0 pulls the lever, the others walk through; copy 1: everybody stays
    observations, rewards, dones, infos = vec.step(np.array([L, D, D, S, S, S]))
    np.testing.assert_array_equal(rewards, [-1, 10, 10, 0, 0, 0])
    np.testing.assert_array_equal(dones, [True, True, True, False, False, False])
    # SuperSuit merges the reset infos (same keys, zero rewards) over the terminal step's
    # infos; the terminal reward is in ``rewards`` above and the terminal observation is kept.
    assert "terminal_observation" in infos[1] and infos[1]["env_reward"] == 0.0
    np.testing.assert_array_equal(observations[0, :9], [0, 1, 0] * 3)  # copy 0 was reset
    for _ in range(4):
        observations, rewards, dones, infos = vec.step(np.full(6, S))
    np.testing.assert_array_equal(dones, [False, False, False, True, True, True])
