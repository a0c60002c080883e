"""Meta-gradient incentive design on Escape Room: the batched rollouts, the REINFORCE step
against a hand computation, the meta-gradient against central finite differences on fixed
rollouts (and on a small Cleanup game), reproducibility, checkpoint and resume of every
designer, the PPO planner, bad input and a smoke run of scripts/escape_room.py."""

import dataclasses
import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.policy_gradient import CollectiveReward, FixedBonus, PolicyGradientLearners, returns_to_go
from incentive_envs.cleanup.game import CleanupParams, CleanupTask
from incentive_envs.episodic import check_task, replay
from incentive_envs.escape_room import EscapeRoomTask
from planners.meta_gradient import (
    PAY_PER,
    IncentiveFunction,
    MetaGradientDesigner,
    meta_gradient,
    meta_objective,
)
from planners.rl_planner import IncentiveChoiceEnv, RLPlanner

L, S, D = 0, 1, 2  # lever, start, door
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "escape_room.py"


ER21 = EscapeRoomTask(2, 1, max_steps=3)


def _fixed_rollouts():
    """ER(2, 1) with T = 3: two training and two validation episodes, actions by hand."""
    train = replay(
        ER21,
        np.array(
            [
                [[L, D], [S, S], [S, S]],  # escape at once (the trailing actions are ignored)
                [[S, D], [L, D], [L, S]],  # walk to the closed door, then escape
            ]
        ),
        np.random.default_rng(0),
    )
    validation = replay(
        ER21,
        np.array(
            [
                [[L, S], [L, D], [S, S]],  # open the door, then walk through: -1 + 10
                [[D, D], [S, S], [L, L]],  # never escape: six moves
            ]
        ),
        np.random.default_rng(0),
    )
    return train, validation


def test_replay_applies_the_rules_and_masks_finished_episodes():
    train, validation = _fixed_rollouts()
    np.testing.assert_array_equal(train.alive, [[True, False, False], [True, True, False]])
    np.testing.assert_array_equal(train.env_rewards[0], [[-1, 10], [0, 0], [0, 0]])
    np.testing.assert_array_equal(train.env_rewards[1], [[0, -1], [-1, 10], [0, 0]])
    np.testing.assert_array_equal(train.welfare(), [9.0, 8.0])
    np.testing.assert_array_equal(validation.alive, [[True, True, False], [True, True, True]])
    np.testing.assert_array_equal(validation.welfare(), [9.0, -6.0])
    np.testing.assert_array_equal(validation.observations[1, 2], [[0, 1, 0, 0, 1, 0]] * 2)  # both at S
    np.testing.assert_array_equal(
        validation.incentive_features[0, 1], [1, 0, 0, 0, 1, 0] + [1, 0, 0, 0, 0, 1]
    )
    returns = returns_to_go(torch.as_tensor(train.env_rewards))
    np.testing.assert_array_equal(returns[1, :, 1], [9.0, 10.0, 0.0])


def _reference_gradient(learners, rollout, rewards, baseline):
    """REINFORCE gradient of a linear softmax policy, written out with loops."""
    weight, bias = (p.numpy() for p in learners.params)
    batch, steps, n_agents = rollout.actions.shape
    positions = np.concatenate((np.full((batch, 1, n_agents), S), rollout.actions[:, :-1]), axis=1)
    returns = np.zeros_like(rewards)
    for b in range(batch):
        for t in reversed(range(steps)):
            later = returns[b, t + 1] if t + 1 < steps else 0.0
            returns[b, t] = rollout.alive[b, t] * rewards[b, t] + later
    advantages = returns.copy()
    if baseline:
        for t in range(steps):
            alive = rollout.alive[:, t]
            if alive.any():
                advantages[:, t] -= returns[alive, t].mean(axis=0)
    grad_weight, grad_bias = np.zeros_like(weight), np.zeros_like(bias)
    for b in range(batch):
        for t in range(steps):
            if not rollout.alive[b, t]:
                continue
            x = np.zeros(3 * n_agents + steps)
            x[3 * np.arange(n_agents) + positions[b, t]] = 1.0
            x[3 * n_agents + t] = 1.0
            for i in range(n_agents):
                logits = x @ weight[i] + bias[i]
                pi = np.exp(logits - logits.max())
                pi /= pi.sum()
                score = np.eye(3)[rollout.actions[b, t, i]] - pi
                grad_weight[i] += np.outer(x, score) * advantages[b, t, i] / batch
                grad_bias[i] += score * advantages[b, t, i] / batch
    return grad_weight, grad_bias


@pytest.mark.parametrize("baseline", [False, True])
def test_the_learning_step_is_the_hand_computed_reinforce_gradient(baseline):
    train, _ = _fixed_rollouts()
    learners = PolicyGradientLearners(
        ER21, 0.1, baseline=baseline, init_scale=0.3, seed=4, dtype=torch.float64
    )
    rewards = train.env_rewards + np.array([0.5, 0.0])  # an incentive of 0.5 to agent 0 every step
    new_weight, new_bias = learners.updated(learners.params, train, torch.as_tensor(rewards))
    grad_weight, grad_bias = _reference_gradient(learners, train, rewards, baseline)
    np.testing.assert_allclose(new_weight.numpy(), learners.params[0].numpy() + 0.1 * grad_weight, rtol=1e-12)
    np.testing.assert_allclose(new_bias.numpy(), learners.params[1].numpy() + 0.1 * grad_bias, rtol=1e-12)


def test_uniform_policies_step_by_the_textbook_numbers():
    # Uniform policies: d log pi(a) / d bias = e_a - 1/3. With a bonus of 0.5 per step,
    # agent 0's returns are -0.5 (lever, episode 0), 0 (start) and -0.5 (lever, episode 1);
    # agent 1's are 10, 9 and 10, all at the door. No baseline, B = 2, lr = 1, zero init.
    train, _ = _fixed_rollouts()
    learners = PolicyGradientLearners(ER21, 1.0, baseline=False, init_scale=0.0, dtype=torch.float64)
    rewards = torch.as_tensor(train.env_rewards + np.array([0.5, 0.0]))
    _, bias = learners.updated(learners.params, train, rewards)
    expected = [[-1 / 3, 1 / 6, 1 / 6], [-29 / 6, -29 / 6, 29 / 3]]
    np.testing.assert_allclose(bias.numpy(), expected, rtol=1e-12, atol=1e-15)


def _meta_setup():
    train, validation = _fixed_rollouts()
    learners = PolicyGradientLearners(
        ER21, 0.5, entropy_coef=0.1, init_scale=0.3, seed=1, dtype=torch.float64
    )
    incentive_fn = IncentiveFunction(ER21, 3.0, hidden=(5,), seed=2, dtype=torch.float64)
    return learners, incentive_fn, train, validation


def _assert_meta_gradient_matches_finite_differences(
    learners, incentive_fn, train, validation, cost_weight, atol=1e-7
):
    def value():  # V(eta) at the incentive function's current parameters
        return meta_objective(learners, learners.params, incentive_fn, train, validation, cost_weight).item()

    gradients = meta_gradient(learners, learners.params, incentive_fn, train, validation, cost_weight)
    h, nonzero = 1e-6, 0
    for parameter, gradient in zip(incentive_fn.parameters(), gradients):
        assert gradient.shape == parameter.shape
        flat = parameter.data.view(-1)
        for j in np.random.default_rng(0).choice(flat.numel(), size=min(3, flat.numel()), replace=False):
            original = flat[j].item()
            flat[j] = original + h
            plus = value()
            flat[j] = original - h
            minus = value()
            flat[j] = original
            estimate = (plus - minus) / (2 * h)
            np.testing.assert_allclose(gradient.view(-1)[j].item(), estimate, rtol=1e-5, atol=atol)
            nonzero += abs(estimate) > 1e-6
    assert nonzero >= 4  # the comparison is not between zeros


@pytest.mark.parametrize("cost_weight", [0.0, 0.3])
def test_meta_gradient_matches_central_finite_differences(cost_weight):
    _assert_meta_gradient_matches_finite_differences(*_meta_setup(), cost_weight)


def _cleanup_meta_setup(pay_per):
    task = CleanupTask(
        CleanupParams(height=4, width=4, n_agents=2, max_cycles=5, apple_respawn_prob=0.9, initial_waste=0.5)
    )
    learners = PolicyGradientLearners(
        task, 0.5, entropy_coef=0.1, init_scale=0.3, seed=1, dtype=torch.float64
    )
    incentive_fn = IncentiveFunction(task, 1.0, pay_per=pay_per, hidden=(4,), seed=2, dtype=torch.float64)
    rng = np.random.default_rng(0)
    return learners, incentive_fn, learners.sample(6, rng), learners.sample(6, rng)


@pytest.mark.parametrize("pay_per", PAY_PER)
def test_meta_gradient_on_cleanup_matches_central_finite_differences(pay_per):
    learners, incentive_fn, train, validation = _cleanup_meta_setup(pay_per)
    assert validation.welfare().any()  # apples were eaten: the welfare term is not zero
    assert train.prosocial.sum() >= 2  # waste was cleaned: events are priced
    _assert_meta_gradient_matches_finite_differences(
        learners, incentive_fn, train, validation, 0.2, atol=1e-8
    )


def test_event_pricing_pays_the_price_per_cleaned_cell_and_nothing_else():
    _, per_event, train, _ = _cleanup_meta_setup("event")
    _, per_step, _, _ = _cleanup_meta_setup("step")
    price = per_step.rollout_incentives(train)  # the same network: the price of every step
    paid = per_event.rollout_incentives(train)
    events = torch.as_tensor(train.prosocial)
    torch.testing.assert_close(paid, events * price, rtol=0, atol=0)
    assert torch.all(paid[events == 0] == 0) and torch.all(paid <= events)  # R_max = 1 per event
    assert paid.sum() > 0


def test_event_pricing_pays_nothing_after_an_escape_room_episode_ended():
    _, per_step, train, _ = _meta_setup()
    alive = torch.as_tensor(train.alive)
    assert not alive.all()  # some episode ended early
    per_event = IncentiveFunction(ER21, 3.0, pay_per="event", hidden=(5,), seed=2, dtype=torch.float64)
    events = torch.as_tensor(train.prosocial)
    assert events.any()  # levers were pulled: prices are paid
    torch.testing.assert_close(
        per_event.rollout_incentives(train), events * per_step.rollout_incentives(train)
    )
    stale = dataclasses.replace(train, prosocial=np.ones_like(train.prosocial))  # events after the end
    assert not per_event.rollout_incentives(stale)[~alive].any()


def test_no_graph_through_the_learning_step_without_create_graph_and_incentives_in_range():
    learners, incentive_fn, train, _ = _meta_setup()
    paid = incentive_fn.rollout_incentives(train)
    assert paid.shape == (2, 3, 2) and torch.all(paid[~torch.as_tensor(train.alive)] == 0)
    assert torch.all((paid >= 0) & (paid <= 3.0))
    new = learners.updated(learners.params, train, torch.as_tensor(train.env_rewards) + paid)
    assert not any(p.requires_grad for p in new)
    graph = learners.updated(
        learners.params, train, torch.as_tensor(train.env_rewards) + paid, create_graph=True
    )
    assert all(p.requires_grad for p in graph)


def test_sampling_is_reproducible_and_policies_are_per_agent():
    learners = PolicyGradientLearners(EscapeRoomTask(3, 2), 0.1, hidden=(8,), seed=0)
    first = learners.sample(64, np.random.default_rng(5))
    second = learners.sample(64, np.random.default_rng(5))
    np.testing.assert_array_equal(first.actions, second.actions)
    assert first.actions.shape == (64, 5, 3) and first.alive[:, 0].all()
    assert not torch.equal(learners.params[0][0], learners.params[0][1])
    frequencies = first.action_frequencies(3)
    np.testing.assert_allclose(frequencies.sum(axis=1), 1.0)


def test_designer_runs_are_reproducible_and_record_their_history():
    def run(seed):
        learners = PolicyGradientLearners(EscapeRoomTask(2, 1), 1.0, seed=seed)
        designer = MetaGradientDesigner(learners, batch_size=16, seed=seed)
        return designer.train(4), designer

    first, designer = run(3)
    second, _ = run(3)
    other, _ = run(4)
    for key in ("welfare", "incentive_paid", "episodes"):
        np.testing.assert_array_equal(first[key], second[key])
    assert not np.array_equal(first["welfare"], other["welfare"])
    np.testing.assert_array_equal(first["episodes"], [32, 48, 64, 80])
    assert designer.train(2)["episodes"].tolist() == [96, 112]


def test_rl_planner_learns_online_and_stops_after_the_iterations():
    planner = _small_rl_planner()
    before = [p.detach().clone() for p in planner.model.policy.parameters()]
    history = planner.train(20)
    assert len(history["welfare"]) == 20 and history["episodes"][-1] == 160
    assert np.asarray(history["bonus"]).shape == (20, 2)
    assert set(np.unique(history["bonus"])) <= {0.0, 1.0, 2.0, 3.0}
    assert any(not torch.equal(a, b) for a, b in zip(before, planner.model.policy.parameters()))
    assert len(planner.train(5)["welfare"]) == 5
    np.testing.assert_array_equal(_small_rl_planner().train(20)["welfare"], history["welfare"])


def test_planner_env_pays_the_chosen_lever_bonus():
    learners = PolicyGradientLearners(EscapeRoomTask(2, 1), 0.1, seed=0)
    env = IncentiveChoiceEnv(learners, 32, bonus_levels=(0.0, 2.0), cost_weight=0.5, horizon=2)
    observation, _ = env.reset(seed=0)
    assert observation in env.observation_space
    observation, reward, terminated, truncated, _ = env.step(np.array([1, 0]))
    assert observation in env.observation_space and not terminated and not truncated
    welfare, paid = env.last_step["welfare"], env.last_step["incentive_paid"]
    assert paid > 0 and reward == pytest.approx((welfare - 0.5 * paid) / 9.0)
    assert observation[0] > 0 and env.last_step["bonus"] == [2.0, 0.0]  # agent 0's lever frequency
    assert env.step(np.array([0, 0]))[3]  # truncated at the horizon
    assert env.last_step["incentive_paid"] == 0.0 and env.last_step["episodes"] == 64


def test_no_incentive_baseline_history():
    learners = PolicyGradientLearners(EscapeRoomTask(2, 1), 0.1, seed=0)
    history = FixedBonus(learners, 0.0, batch_size=8, seed=0).train(3)
    assert history["episodes"].tolist() == [8, 16, 24] and not history["incentive_paid"].any()
    assert set(history) == {"welfare", "incentive_paid", "prosocial_share", "prosocial_events", "episodes"}


def test_collective_reward_trains_every_agent_on_the_mean_reward():
    """Each agent is trained on the mean of every agent's env reward, zero after the episode
    ended (Escape Room ends early); the transfers sum to zero at every step and are negative
    for some agent-steps (the −1 per move is shared); the learning step is the one on those
    rewards."""
    task = EscapeRoomTask(3, 1, max_steps=6)
    designer = CollectiveReward(PolicyGradientLearners(task, 0.1, seed=4), batch_size=16, seed=2)
    shadow = PolicyGradientLearners(task, 0.1, seed=4)
    rollout = shadow.sample(16, np.random.default_rng(2))
    transfers = designer.incentives(rollout)
    rewards = rollout.env_rewards + transfers
    for agent in range(3):
        np.testing.assert_allclose(rewards[..., agent], rollout.env_rewards.sum(-1) / 3, atol=1e-12)
    np.testing.assert_allclose(transfers.sum(-1), 0.0, atol=1e-12)
    assert (transfers < 0).any() and (transfers > 0).any()
    assert not rollout.alive.all() and not rewards[~rollout.alive].any()
    shadow.step(rollout, torch.as_tensor(rewards, dtype=shadow.dtype))
    record = designer.iteration()
    for mine, theirs in zip(designer.learners.params, shadow.params):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=0)
    assert record["welfare"] == pytest.approx(rollout.welfare().mean())
    assert record["incentive_paid"] == pytest.approx(0.0, abs=1e-9)


def _bad_calls():
    learners, incentive_fn, train, validation = _meta_setup()
    three_agents = replay(
        EscapeRoomTask(3, 1, max_steps=3), np.ones((1, 3, 3), dtype=np.int64), np.random.default_rng(0)
    )
    return {
        "n_agents": lambda: EscapeRoomTask(1, 1),
        "threshold": lambda: EscapeRoomTask(3, 3),
        "max_steps": lambda: EscapeRoomTask(2, 1, max_steps=0),
        "task": lambda: PolicyGradientLearners("escape room", 0.1),
        "learning_rate": lambda: PolicyGradientLearners(ER21, 0.0),
        "hidden": lambda: PolicyGradientLearners(ER21, 0.1, hidden=(0,)),
        "entropy_coef": lambda: PolicyGradientLearners(ER21, 0.1, entropy_coef=-1.0),
        "discount": lambda: PolicyGradientLearners(ER21, 0.1, discount=0.0),
        "baseline": lambda: PolicyGradientLearners(ER21, 0.1, baseline="yes"),
        "dtype": lambda: PolicyGradientLearners(ER21, 0.1, dtype=torch.int64),
        "rng": lambda: learners.sample(4, 42),
        "batch_size": lambda: learners.sample(0, np.random.default_rng(0)),
        "rewards": lambda: learners.objective(learners.params, train, torch.zeros(2, 3, 3)),
        "rollout": lambda: learners.log_probs(learners.params, "episodes"),
        "3 agents": lambda: learners.log_probs(learners.params, three_agents),
        "actions": lambda: replay(ER21, np.ones((2, 3, 2)), np.random.default_rng(0)),
        "max_incentive": lambda: IncentiveFunction(ER21, 0.0),
        "pay_per": lambda: IncentiveFunction(ER21, 1.0, pay_per="episode"),
        "incentive function": lambda: incentive_fn.rollout_incentives(three_agents),
        "cost_weight": lambda: meta_objective(
            learners, learners.params, incentive_fn, train, validation, -1.0
        ),
        "designer_lr": lambda: MetaGradientDesigner(learners, designer_lr=0.0),
        "iterations": lambda: MetaGradientDesigner(learners).train(0),
        "learners": lambda: IncentiveChoiceEnv("followers", 8),
        "bonus_levels": lambda: IncentiveChoiceEnv(learners, 8, bonus_levels=(-1.0, 1.0)),
        "horizon": lambda: IncentiveChoiceEnv(learners, 8, horizon=0),
        "ppo_kwargs": lambda: RLPlanner(learners, ppo_kwargs={"seed": 1}),
        "bonus": lambda: FixedBonus(learners, -1.0),
        "FixedBonus state": lambda: FixedBonus(learners).load_state_dict({"learners": {}}),
        "CollectiveReward learners": lambda: CollectiveReward("followers"),
        "CollectiveReward batch_size": lambda: CollectiveReward(learners, batch_size=0),
        "CollectiveReward state": lambda: CollectiveReward(learners).load_state_dict({"episodes": 0}),
        "MetaGradientDesigner state": lambda: MetaGradientDesigner(learners).load_state_dict({}),
    }


@pytest.mark.parametrize("name", list(_bad_calls()))
def test_bad_arguments_raise_value_errors(name):
    match = (
        re.escape(name) if name.endswith(" state") else name.split()[-1] if name != "3 agents" else "agents"
    )
    with pytest.raises(ValueError, match=match):
        _bad_calls()[name]()


def _load_script():
    spec = importlib.util.spec_from_file_location("escape_room_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_script_core_runs_every_planner_on_a_tiny_configuration(tmp_path):
    script = _load_script()
    for planner in script.PLANNERS:
        history = script.run(planner, 3, 2, seed=0, iterations=6, batch_size=8)
        summary = script.summarise(history, 3, 2)
        assert summary["optimum"] == 8.0 and np.isfinite(summary["final_welfare"])
        assert len(summary["curve"]["welfare"]) == 6
    with pytest.raises(ValueError, match="planner"):
        script.run("oracle", 2, 1, seed=0, iterations=1, batch_size=1)


def test_script_quick_run_writes_json_and_plot(tmp_path):
    script = _load_script()
    result = script.main(
        ["--json", str(tmp_path / "er.json"), "--plot", str(tmp_path / "er.png"), "--quick", "--seeds", "1"]
    )
    saved = json.loads((tmp_path / "er.json").read_text())
    assert len(saved["runs"]) == 9 == len(result["runs"]) and len(saved["summary"]) == 9
    run = saved["runs"][0]
    assert {"env", "planner", "seed", "final_welfare", "optimum", "episodes", "wall_s"} <= set(run)
    assert (tmp_path / "er.png").stat().st_size > 0


def _small_rl_planner(seed=0):
    learners = PolicyGradientLearners(EscapeRoomTask(2, 1), 0.01, seed=seed)
    return RLPlanner(
        learners, batch_size=8, seed=seed, ppo_kwargs={"n_steps": 16, "batch_size": 16, "n_epochs": 2}
    )


def test_escape_room_task_passes_the_conformance_check():
    check_task(EscapeRoomTask(3, 2))
    check_task(EscapeRoomTask(2, 1, max_steps=7), batch_size=5, seed=3)


def test_discounted_returns_to_go_match_a_loop():
    rewards = torch.as_tensor(np.random.default_rng(0).normal(size=(3, 6, 2)))
    expected = torch.zeros_like(rewards)
    for t in reversed(range(6)):
        expected[:, t] = rewards[:, t] + (0.9 * expected[:, t + 1] if t < 5 else 0.0)
    torch.testing.assert_close(returns_to_go(rewards, 0.9), expected)
    torch.testing.assert_close(returns_to_go(rewards, 1.0), rewards.flip(1).cumsum(1).flip(1))


def _designers():
    def learners():
        return PolicyGradientLearners(EscapeRoomTask(3, 1), 0.05, seed=7)

    return {
        "fixed_bonus": lambda: FixedBonus(learners(), [1.0, 0.0, 0.5], batch_size=8, seed=1),
        "collective_reward": lambda: CollectiveReward(learners(), batch_size=8, seed=1),
        "meta_gradient": lambda: MetaGradientDesigner(
            learners(), batch_size=8, incentive_hidden=(8,), seed=1
        ),
        "rl_planner": lambda: RLPlanner(
            learners(), batch_size=8, seed=1, ppo_kwargs={"n_steps": 8, "batch_size": 8, "n_epochs": 1}
        ),
    }


@pytest.mark.parametrize("name", list(_designers()))
def test_a_checkpointed_run_resumes_exactly(name):
    make = _designers()[name]
    straight = make()
    expected = straight.train(20)  # the RL planner's PPO trains twice (every 8 iterations)
    first = make()
    head = first.train(11)
    state = first.state_dict()
    first.train(3)  # moves on; the checkpoint must not move with it
    resumed = make()
    resumed.load_state_dict(state)
    tail = resumed.train(9)
    for key in expected:
        np.testing.assert_array_equal(np.concatenate((head[key], tail[key])), expected[key])
    for mine, theirs in zip(resumed.learners.params, straight.learners.params):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=0)


def test_the_rl_planner_keeps_the_global_generators_of_its_caller():
    torch.manual_seed(123)
    np.random.seed(123)
    expected_torch, expected_numpy = torch.rand(3), np.random.random(3)
    torch.manual_seed(123)
    np.random.seed(123)
    _small_rl_planner().train(17)  # constructs PPO, samples, trains once
    torch.testing.assert_close(torch.rand(3), expected_torch)
    np.testing.assert_array_equal(np.random.random(3), expected_numpy)


def test_designer_iterations_report_the_metrics_of_their_batch():
    learners = PolicyGradientLearners(EscapeRoomTask(2, 1), 0.01, seed=0)
    designer = FixedBonus(learners, 2.0, batch_size=64, seed=0)
    record = designer.iteration()
    assert set(record) == {"welfare", "incentive_paid", "prosocial_share", "prosocial_events", "episodes"}
    assert record["incentive_paid"] == pytest.approx(2.0 * record["prosocial_events"])
    # uniform initial policies pull the lever about a third of the time, each pull paid 2
    assert 0.2 < record["prosocial_share"] < 0.45 and record["episodes"] == 64
    steps_per_episode = record["incentive_paid"] / (2.0 * record["prosocial_share"] * 2)
    assert 1.0 <= steps_per_episode <= 5.0
