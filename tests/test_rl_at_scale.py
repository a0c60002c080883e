"""RL followers at scale: one planner steering every copy an RL library trains on (SB3 vector
copies, RLlib env runners), TorchRL's wrapper, and the slow timescale across episodes."""

import warnings

import numpy as np
import pytest

from agents import EuclideanMirrorDescent
from incentive_envs import make, registry
from incentive_envs.cournot.env import CournotEnv
from incentive_envs.testing import ConformanceError, check_env
from planners import Planner, SingleLoopPlanner, SocialGradientPlanner
from planners.shared import JointActionRecorder, SharedPlanner, SharedPlannerVecEnv

GAME = {"n_firms": 3, "k": 1.0, "max_cycles": 7, "feedback": ("gradient",)}


class MeanRecorder(Planner):
    """Adds 1 to every tax and records the mean joint action it was shown."""

    def __init__(self, game):
        super().__init__(game)
        self.seen = []

    def _update(self, theta, x, k):
        self.seen.append(x.copy())
        return self.game.incentive_set.project(theta + 1.0)


def _vec(planner_fn=MeanRecorder, copies=3, update_every=2, warmup=0):
    game = make("cournot", **GAME).game
    shared = SharedPlanner(planner_fn(game), update_every, warmup)
    return SharedPlannerVecEnv(lambda: make("cournot", **GAME), copies, shared), shared


def test_one_planner_sees_the_mean_joint_action_of_every_copy_and_posts_to_all():
    vec, shared = _vec()
    vec.seed(0)
    vec.reset()
    played = []
    for step in range(4):
        actions = np.arange(9, dtype=np.float32).reshape(9, 1) + step  # copy c, firm i: 3c + i + step
        vec.step(actions)
        played.append(actions.reshape(3, 3).mean(axis=0))
    assert shared.updates == 2 and len(shared.planner.seen) == 2
    np.testing.assert_allclose(shared.planner.seen[0], np.mean(played[:2], axis=0))
    np.testing.assert_allclose(shared.planner.seen[1], np.mean(played[2:], axis=0))
    assert all(np.array_equal(copy.incentive, np.full(3, 2.0)) for copy in vec.copies)


def test_warmup_rounds_are_played_at_the_initial_incentive():
    vec, shared = _vec(update_every=1, warmup=3)
    vec.reset()
    for _ in range(3):
        vec.step(np.ones((9, 1), dtype=np.float32))
    assert shared.updates == 0 and np.all(vec.incentive == 0.0)
    vec.step(np.ones((9, 1), dtype=np.float32))
    assert shared.updates == 1 and np.all(vec.incentive == 1.0)


def test_episode_ends_follow_sb3_conventions_and_keep_the_incentive():
    vec, shared = _vec(update_every=1)
    first = vec.reset()
    assert first.shape == (9, 3) and len(vec.reset_infos) == 9 and "gradient" in vec.reset_infos[0]
    for step in range(7):
        observations, rewards, dones, infos = vec.step(np.ones((9, 1), dtype=np.float32))
    assert dones.all() and all(info["TimeLimit.truncated"] for info in infos)
    assert all("terminal_observation" in info for info in infos)
    np.testing.assert_array_equal(observations[:, 2], 0.0)  # reset: own last output 0
    np.testing.assert_array_equal(observations[:, 0], 7.0)  # the incentive survived the episode end
    assert shared.updates == 7


def test_seeded_vector_envs_reproduce_a_stochastic_planner_and_noisy_feedback():
    from planners import ZerothOrderPlanner

    def run():
        game_kwargs = {**GAME, "feedback_noise_std": 0.5}
        game = make("cournot", **game_kwargs).game
        shared = SharedPlanner(ZerothOrderPlanner(game, 0, probe_steps=1), 1)
        vec = SharedPlannerVecEnv(lambda: make("cournot", **game_kwargs), 2, shared)
        vec.seed(5)
        trace = [vec.reset()]
        for step in range(12):
            trace.append(vec.step(np.full((6, 1), float(step), dtype=np.float32))[0])
            trace.append(vec.incentive)
        return trace

    first, second = run(), run()
    assert all(np.array_equal(a, b) for a, b in zip(first, second))


def test_sb3_ppo_trains_reproducibly_on_the_shared_planner_vec_env():
    from stable_baselines3 import PPO

    def train(seed):
        vec, shared = _vec(lambda game: SocialGradientPlanner(game, 0.05), copies=2, update_every=4)
        model = PPO("MlpPolicy", vec, n_steps=16, batch_size=32, n_epochs=1, seed=seed, device="cpu")
        model.learn(192)
        return np.concatenate([p.detach().numpy().ravel() for p in model.policy.parameters()]), shared

    weights, shared = train(0)
    again, _ = train(0)
    np.testing.assert_array_equal(weights, again)
    assert not np.array_equal(weights, train(1)[0])
    assert shared.updates == 192 // 6 // 4  # 6 sub-envs: 32 rounds, one update per 4


def test_shared_planner_state_round_trips():
    vec, shared = _vec(
        lambda game: SingleLoopPlanner(game, EuclideanMirrorDescent(game.strategy_set, 0.1), 0.5)
    )
    vec.reset()
    for _ in range(5):
        vec.step(np.ones((9, 1), dtype=np.float32))
    import json

    state = json.loads(json.dumps(shared.state_dict()))
    other = SharedPlanner(
        SingleLoopPlanner(shared.game, EuclideanMirrorDescent(shared.game.strategy_set, 0.1), 0.5), 2
    )
    other.load_state_dict(state)
    assert other.state_dict() == shared.state_dict()
    with pytest.raises(ValueError, match="incentive"):
        other.load_state_dict({**state, "incentive": [1e9] * 3})
    assert other.state_dict() == shared.state_dict()  # a refused state changes nothing


def test_torchrl_wrapper_sees_every_info_key():
    pytest.importorskip("torchrl", reason="TorchRL is in the [rl] extra")
    from torchrl.envs.libs.pettingzoo import PettingZooWrapper
    from torchrl.envs.utils import check_env_specs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for env_id, params, group, keys in (
            (
                "cournot_v0",
                {"n_firms": 3, "feedback": ("gradient", "best_response")},
                "firm",
                {"gradient", "best_response"},
            ),
            ("escape_room_v0", {}, "agent", {"env_reward", "incentive", "door_open"}),
        ):
            env = PettingZooWrapper(make(env_id, **params))
            check_env_specs(env)
            rollout = env.rollout(3)
            assert {key for key in rollout[group, "info"].keys()} == keys


@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray", reason="RLlib is in the [rl] extra")
    pytest.importorskip("ray.rllib", reason="RLlib is in the [rl] extra")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _rllib_config(update_every=1):
    from ray.rllib.algorithms.ppo import PPO, PPOConfig

    from planners.rllib import register_envs, with_shared_planner

    register_envs()
    return (
        PPOConfig(
            algo_class=with_shared_planner(
                PPO, "cournot_v0", lambda game: SocialGradientPlanner(game, 0.1), update_every=update_every
            )
        )
        .environment("incentive_envs/cournot_v0", env_config={"n_firms": 4, "k": 1.0, "max_cycles": 50})
        .multi_agent(policies={"shared"}, policy_mapping_fn=lambda agent_id, episode, **kwargs: "shared")
        .env_runners(num_env_runners=2)
        .training(train_batch_size_per_learner=400, minibatch_size=100, num_epochs=1)
        .debugging(seed=0)
    )


def test_register_envs_registers_the_whole_registry(ray_session):
    from planners.rllib import register_envs

    assert register_envs() == [f"incentive_envs/{env_id}" for env_id in registry()]


def test_two_rllib_env_runners_play_the_same_incentive_sequence_from_one_planner(ray_session, tmp_path):
    from planners.rllib import recorders

    algorithm = _rllib_config().build_algo()
    try:
        for _ in range(3):
            algorithm.train()
        logs = algorithm.env_runner_group.foreach_env_runner(
            lambda runner: [recorder.incentives_received for recorder in recorders(runner)],
            local_env_runner=False,
        )
        assert len(logs) == 2 and all(len(log) == 1 for log in logs)
        first, second = logs[0][0], logs[1][0]
        assert first == second and len(first) == 4  # the initial post and three updates
        assert algorithm.shared_planner.updates == 3
        np.testing.assert_allclose(first[-1], algorithm.shared_planner.incentive)
        assert np.any(np.array(first[-1]) != 0.0)
        path = algorithm.save_to_path(str(tmp_path / "checkpoint"))
        saved = algorithm.shared_planner.state_dict()
    finally:
        algorithm.stop()
    restored = _rllib_config().build_algo()
    try:
        restored.restore_from_path(path)
        assert restored.shared_planner.state_dict() == saved
        incentives = restored.env_runner_group.foreach_env_runner(
            lambda runner: [recorder.unwrapped.incentive.tolist() for recorder in recorders(runner)],
            local_env_runner=False,
        )
        assert all(np.allclose(runner[0], saved["incentive"]) for runner in incentives)
    finally:
        restored.stop()


def test_joint_action_recorder_sums_what_was_played():
    recorder = JointActionRecorder(make("cournot", **GAME))
    recorder.reset(seed=0)
    for value in (1.0, 3.0):
        recorder.step({agent: np.array([value], dtype=np.float32) for agent in recorder.agents})
    total, count = recorder.collect()
    np.testing.assert_allclose(total, [4.0, 4.0, 4.0])
    assert count == 2 and recorder.collect()[1] == 0


class _EmptyResetInfos(CournotEnv):
    def reset(self, seed=None, options=None):
        observations, infos = super().reset(seed=seed, options=options)
        return observations, {agent: {} for agent in infos}


class _InfiniteObservationBounds(CournotEnv):
    def _observation_bounds(self):
        low, high = super()._observation_bounds()
        return low, np.full_like(high, np.inf)


@pytest.mark.parametrize(
    "env_class, message",
    [
        (_EmptyResetInfos, "keys differ: reset\\(\\) \\[\\], step\\(\\) \\['gradient'\\]"),
        (_InfiniteObservationBounds, "infinite bounds"),
    ],
)
def test_the_conformance_suite_enforces_finite_bounds_and_reset_infos(env_class, message):
    with pytest.raises(ConformanceError, match=message):
        check_env(
            lambda **kwargs: env_class(
                **{"n_firms": 3, "k": 1.0, "max_cycles": 30, "feedback": ("gradient",), **kwargs}
            )
        )


@pytest.mark.parametrize("env_id", list(registry()))
def test_supersuit_normalises_every_envs_observations(env_id):
    import supersuit as ss

    params = {"congestion_v0": {"network": "braess"}}.get(env_id, {})
    env = ss.normalize_obs_v0(make(env_id, **params))
    observations, _ = env.reset(seed=0)
    observations, *_ = env.step({agent: env.action_space(agent).sample() for agent in env.agents})
    for agent, observation in observations.items():
        assert np.all((observation >= 0.0) & (observation <= 1.0)), agent


def test_human_render_mode_prints_the_summary(capsys):
    env = make("cournot", n_firms=3, render_mode="human")
    env.reset(seed=0)
    assert env.render() is None
    assert "round 0/" in capsys.readouterr().out
