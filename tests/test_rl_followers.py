"""Seeded SB3 PPO followers through SuperSuit: reproducible weights under a seed, seeds that
reach the env resets, truncation bootstrapping flags, attribute access, independent
learners, short runs on escape_room_v0, cournot_v0 and the planner wrapper, bad input."""

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

from agents import EuclideanMirrorDescent
from agents.rl import AgentView, SuperSuitVecEnv, make_vec_env, train_ppo
from incentive_envs import aggregative_v0, congestion_v0, cournot_v0, escape_room_v0, oscillators_v0
from planners import PlannerWrapper, SingleLoopPlanner, ZerothOrderPlanner
from planners.social_gradient import SocialGradientPlanner

SMALL = {"n_steps": 64, "batch_size": 64, "n_epochs": 2, "device": "cpu"}


def _weights(model):
    return model.policy.state_dict()


def _same_weights(a, b):
    first, second = _weights(a), _weights(b)
    return first.keys() == second.keys() and all(torch.equal(first[key], second[key]) for key in first)


@pytest.mark.parametrize(
    "make_env",
    [
        lambda: escape_room_v0.parallel_env(n_agents=3, threshold=1),
        lambda: cournot_v0.parallel_env(n_firms=3, max_cycles=20, feedback_noise_std=0.5),
    ],
    ids=["escape_room", "cournot"],
)
def test_seeded_runs_give_identical_weights_and_another_seed_does_not(make_env):
    first = train_ppo(make_env(), 128, seed=3, **SMALL)
    second = train_ppo(make_env(), 128, seed=3, **SMALL)
    other = train_ppo(make_env(), 128, seed=4, **SMALL)
    assert _same_weights(first, second)
    assert not _same_weights(first, other)


def test_independent_learners_are_reproducible_and_train_one_policy_per_agent():
    def run(seed):
        return train_ppo(escape_room_v0.parallel_env(), 128, seed=seed, independent=True, **SMALL)

    first, second, other = run(0), run(0), run(1)
    assert list(first) == ["agent_0", "agent_1"]
    assert all(model.num_timesteps == 128 for model in first.values())
    assert all(_same_weights(first[agent], second[agent]) for agent in first)
    assert not _same_weights(first["agent_0"], other["agent_0"])
    assert not _same_weights(first["agent_0"], first["agent_1"])  # seeded seed + k


def test_ppo_accepts_a_seed_and_the_seed_reaches_the_env_resets():
    env = cournot_v0.parallel_env(n_firms=2, max_cycles=10, feedback_noise_std=1.0)
    PPO("MlpPolicy", make_vec_env(env), seed=5, device="cpu")  # SuperSuit's own wrapper raises here

    def reset_gradients(seed, n_envs=2):
        vec = make_vec_env(env, n_envs=n_envs, seed=seed)
        vec.reset()
        first = np.concatenate([info["gradient"] for info in vec.reset_infos])
        vec.reset()  # no new seed: the copies' generators continue
        return first, np.concatenate([info["gradient"] for info in vec.reset_infos])

    first, again = reset_gradients(7)
    np.testing.assert_array_equal(first, reset_gradients(7)[0])
    assert not np.array_equal(first, again)
    # copy c is reset with seed + c; its two agents share the copy
    np.testing.assert_array_equal(first[2:], reset_gradients(8)[0][:2])
    assert make_vec_env(env, n_envs=2).seed(7) == [7, 7, 8, 8]


def test_steps_flag_truncation_but_not_termination_for_bootstrapping():
    vec = make_vec_env(escape_room_v0.parallel_env(), n_envs=2)
    observations = vec.reset()
    assert observations.shape == (4, 7) and vec.num_envs == 4
    for _ in range(4):
        _, _, dones, infos = vec.step(np.array([1, 1, 1, 1]))
        assert not dones.any()
    _, rewards, dones, infos = vec.step(np.array([0, 2, 1, 1]))  # copy 0 escapes, copy 1 times out
    np.testing.assert_array_equal(rewards, [-1, 10, 0, 0])
    assert dones.dtype == bool and dones.all()
    assert [info["TimeLimit.truncated"] for info in infos] == [False, False, True, True]
    assert all("terminal_observation" in info for info in infos)


def test_attribute_access_reaches_the_copy_of_each_sub_env():
    vec = make_vec_env(escape_room_v0.parallel_env(n_agents=3, threshold=2), n_envs=2)
    assert vec.get_attr("threshold") == [2] * 6 and vec.render_mode is None
    assert len(vec.envs) == 2 and vec.envs[0] is not vec.envs[1]
    vec.env_method("set_incentive", np.full(3, 1.5), indices=[3, 4])
    vec.set_attr("max_cycles", 9, indices=[0])
    vec.reset()
    _, rewards, _, _ = vec.step(np.ones(6, dtype=np.int64))
    np.testing.assert_array_equal(rewards, [0, 0, 0, 1.5, 1.5, 1.5])
    assert vec.get_attr("max_cycles") == [9, 9, 9, 5, 5, 5]
    assert vec.env_is_wrapped(object) == [False] * 6
    vec.set_options({"incentive": np.full(3, 2.0)})
    vec.reset()
    _, rewards, _, _ = vec.step(np.ones(6, dtype=np.int64))
    np.testing.assert_array_equal(rewards, np.full(6, 2.0))


def test_short_runs_on_escape_room_cournot_and_the_planner_wrapper():
    escape = train_ppo(escape_room_v0.parallel_env(n_agents=4, threshold=2), 128, seed=0, n_envs=2, **SMALL)
    assert escape.env.num_envs == 8 and escape.num_timesteps == 64 * 8  # one whole rollout
    cournot = train_ppo(cournot_v0.parallel_env(n_firms=3, max_cycles=16), 128, seed=0, **SMALL)
    action, _ = cournot.predict(np.zeros((3, 3), dtype=np.float32), deterministic=True)
    assert action.shape == (3, 1)
    base = cournot_v0.parallel_env(n_firms=3, max_cycles=30)
    wrapper = PlannerWrapper(
        base,
        SingleLoopPlanner(base.game, EuclideanMirrorDescent(base.game.strategy_set, 0.1), 0.05),
        update_every=4,
    )
    shared = train_ppo(wrapper, 128, seed=0, **SMALL)
    # 64 rounds across two episode ends: the planner kept its clock, one update per 4 rounds
    assert shared.env.get_attr("planner_iterations") == [16, 16, 16]
    independent = train_ppo(wrapper, 64, seed=0, independent=True, **SMALL)
    assert sorted(independent) == ["firm_0", "firm_1", "firm_2"]
    assert wrapper.planner_iterations == 0  # train_ppo steps copies, never the env it was given


def test_agent_view_lets_the_other_agents_act_with_their_policies():
    class Always:
        def __init__(self, action):
            self.action = action

        def predict(self, observation, deterministic=False):
            return np.int64(self.action), None

    view = AgentView(escape_room_v0.parallel_env(n_agents=3, threshold=1), "agent_2", {})
    view.policies.update({"agent_0": Always(0), "agent_1": Always(1)})
    observation, _ = view.reset(seed=0)
    assert observation in view.observation_space
    observation, reward, terminated, truncated, info = view.step(2)
    assert (reward, terminated, truncated) == (10.0, True, False) and info["door_open"]


def test_bad_arguments_raise_value_errors():
    env = escape_room_v0.parallel_env()
    with pytest.raises(ValueError, match="parallel_env"):
        make_vec_env(object())
    with pytest.raises(ValueError, match="n_envs"):
        make_vec_env(env, n_envs=0)
    with pytest.raises(ValueError, match="seed"):
        make_vec_env(env, seed=-1)
    with pytest.raises(ValueError, match="seed"):
        train_ppo(env, 64, seed=1.5)
    with pytest.raises(ValueError, match="total_timesteps"):
        train_ppo(env, 0, seed=0)
    with pytest.raises(ValueError, match="ppo_kwargs"):
        train_ppo(env, 64, seed=0, env=None)
    with pytest.raises(ValueError, match="options"):
        SuperSuitVecEnv(env).set_options([{}, {}])
    with pytest.raises(ValueError, match="agent"):
        AgentView(env, "agent_9", {})


@pytest.mark.parametrize(
    "make_env, make_planner",
    [
        (
            lambda: cournot_v0.parallel_env(n_firms=3, max_cycles=30),
            lambda game: SingleLoopPlanner(game, EuclideanMirrorDescent(game.strategy_set, 0.05), 0.05),
        ),
        (
            lambda: aggregative_v0.parallel_env(n_agents=4, max_cycles=30),
            lambda game: SocialGradientPlanner(game, 0.02),
        ),
        (
            lambda: oscillators_v0.parallel_env(n_agents=4, max_cycles=30),
            lambda game: SocialGradientPlanner(game, 0.02),
        ),
        (
            lambda: congestion_v0.parallel_env(network="braess", max_cycles=30),
            # PPO's actions put exact zeros on paths, where the logit model's implicit gradient
            # does not exist: a planner that sees only the social cost
            lambda game: ZerothOrderPlanner(
                game, np.random.default_rng(0), gain=0.01, perturbation=0.5, probe_steps=2
            ),
        ),
    ],
    ids=["cournot", "aggregative", "oscillators", "congestion"],
)
def test_short_ppo_run_through_the_planner_wrapper_on_every_model_env(make_env, make_planner):
    base = make_env()
    wrapper = PlannerWrapper(base, make_planner(base.game), update_every=4)
    model = train_ppo(wrapper, 64, seed=0, **SMALL)
    assert model.num_timesteps >= 64
    assert all(count >= 1 for count in model.env.get_attr("planner_iterations"))
