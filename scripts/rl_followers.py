"""Deep-RL followers at scale: one planner steering SB3 PPO firms across vector copies.

Cournot (``cournot_v0``) with ``n = 10`` firms, production-cost curvature ``k = 1`` and an
output cap of 40 (the Nash outputs at zero tax are ≈ 8, the first-best ones ≤ 29). The firms
are one Stable-Baselines3 PPO policy shared by all of them and all copies, a Gaussian MLP on
the 1-D output, observing ``[own tax, last price, own last output]`` (divided by the fixed
scales of :func:`observation_scales`). The stage game is repeated: PPO uses ``γ = 0`` (each
round is a contextual bandit — the firms best-respond myopically, as the game's Nash
equilibrium assumes), actions are PPO outputs in ``[-1, 1]`` mapped affinely to ``[0, 40]``
(clipped to ``[-1, 1]`` first: the envs refuse out-of-bound actions) and rewards are
normalised by ``VecNormalize`` (running scale only).

ONE planner steers ``n_copies`` copies of the game (:class:`planners.shared.SharedPlannerVecEnv`:
sub-env ``10c + i`` is firm ``i`` of copy ``c``): every ``K`` rounds (``K`` = one PPO rollout
of ``n_steps`` rounds of every copy), after a warm-up of a few rollouts at zero tax, it takes
one step from the mean of the joint actions played in all copies during those ``K`` rounds
(averaging removes most of PPO's sampling noise) and posts the new tax to every copy. Episodes
last ``MAX_CYCLES`` rounds; the tax and the planner outlive them. Planners:

* ``none``: no tax (:class:`planners.baselines.NoIncentivePlanner`);
* ``social_gradient``: ``θ ← Proj(θ + α ∇_xΦ(x̄))`` (:class:`planners.social_gradient.SocialGradientPlanner`),
  observes only the played actions and the social cost's gradient;
* ``implicit_gradient``: :class:`planners.single_loop.SingleLoopPlanner` (implicit
  hypergradient at the observed ``x̄`` from the game model), constant step;
* ``oracle``: the first-best tax from the start (:class:`planners.baselines.OraclePlanner`) —
  the bound of what PPO followers reach given their own noise.

Welfare: ``W(x) = −social_cost`` of the outputs the firms actually played (sampled actions,
exploration noise included), averaged over the copies. A run's ``final_welfare`` is the mean of
``W`` over the last 10% of training rounds; ``deterministic_welfare`` is that of the final
deterministic (mean-action) policy played for ``EVAL_ROUNDS`` rounds at the final tax, averaged
over the last half. ``gap_closed = (W − W̄_none)/(W* − W̄_none)`` with ``W̄_none`` the mean final
welfare of the ``none`` runs and ``W* = −game.social_optimum().value``. Target: both adaptive
planners close ≥ 80% of the gap. ``env_steps_per_s``: env steps (rounds of one copy, summed
over the copies) per second of training (PPO's sampling and updates, planner steps included).

Usage: ``python scripts/rl_followers.py --json rl.json --plot rl.png [--seeds 3] [--quick]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecEnvWrapper, VecNormalize

from agents import EuclideanMirrorDescent
from incentive_envs import cournot_v0
from incentive_envs.io import save_figure_atomic, write_json_atomic
from planners.base import Planner
from planners.baselines import NoIncentivePlanner, OraclePlanner
from planners.shared import SharedPlanner, SharedPlannerVecEnv
from planners.single_loop import SingleLoopPlanner
from planners.social_gradient import SocialGradientPlanner

PLANNERS = ("none", "social_gradient", "implicit_gradient", "oracle")
ADAPTIVE = ("social_gradient", "implicit_gradient")
"""The planners the target is about."""
TARGET = 0.8
"""Fraction of the gap between ``W̄_none`` and ``W*`` both adaptive planners must close."""
GAME = {"n_firms": 10, "k": 1.0, "max_output": 40.0}
STEP_SIZES = {"social_gradient": 0.1, "implicit_gradient": 2.0}
PPO_KWARGS = {
    "learning_rate": 1e-3,
    "batch_size": 320,
    "n_epochs": 5,
    "gamma": 0.0,
    "gae_lambda": 1.0,
    "ent_coef": 0.0,
    "clip_range": 0.2,
    "policy_kwargs": {"net_arch": [64, 64], "log_std_init": -1.0},
    "device": "cpu",
}
MAX_CYCLES = 1000
"""Episode length (rounds); episodes end and restart during training, the tax carries over."""
FULL = {"rounds": 6000, "n_copies": 4, "n_steps": 32, "warmup_rollouts": 10}
QUICK = {"rounds": 96, "n_copies": 2, "n_steps": 32, "warmup_rollouts": 1}
CURVE_POINTS = 120
EVAL_ROUNDS = 200


def observation_scales(game) -> np.ndarray:
    """Fixed divisors of ``[own tax, last price, own last output]``: largest tax bound, ``p0``,
    output cap."""
    p = game.params
    return np.array([max(abs(b) for b in p.tax_bounds), p.p0, p.output_cap])


def make_planner(name: str, game) -> Planner:
    """The planner called ``name`` (one of :data:`PLANNERS`) on ``game``."""
    if name == "none":
        return NoIncentivePlanner(game)
    if name == "oracle":
        return OraclePlanner(game)
    if name == "social_gradient":
        return SocialGradientPlanner(game, STEP_SIZES["social_gradient"])
    if name == "implicit_gradient":  # projected gradient play (unit step) as its model of PPO firms
        return SingleLoopPlanner(
            game, EuclideanMirrorDescent(game.strategy_set, 1.0), STEP_SIZES["implicit_gradient"]
        )
    raise ValueError(f"planner must be one of {PLANNERS}, got {name!r}")


def to_env_actions(actions, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """PPO's actions in ``[-1, 1]`` (clipped to it) mapped affinely to ``[low, high]``."""
    actions = np.clip(np.asarray(actions, dtype=np.float64), -1.0, 1.0)
    return low + 0.5 * (actions + 1.0) * (high - low)


class ScaledActionsObservations(VecEnvWrapper):
    """PPO acts in ``[-1, 1]`` (:func:`to_env_actions`); observations divided by fixed scales."""

    def __init__(self, venv, obs_scale: np.ndarray):
        low, high = venv.action_space.low, venv.action_space.high
        self._low, self._high = low.astype(np.float64), high.astype(np.float64)
        self._obs_scale = np.asarray(obs_scale, dtype=np.float32)
        observation_space = spaces.Box(
            venv.observation_space.low / self._obs_scale,
            venv.observation_space.high / self._obs_scale,
            dtype=np.float32,
        )
        action_space = spaces.Box(-1.0, 1.0, low.shape, dtype=np.float32)
        super().__init__(venv, observation_space=observation_space, action_space=action_space)

    def step_async(self, actions):
        self.venv.step_async(to_env_actions(actions, self._low, self._high))

    def step_wait(self):
        observations, rewards, dones, infos = self.venv.step_wait()
        for info in infos:
            if "terminal_observation" in info:
                info["terminal_observation"] = info["terminal_observation"] / self._obs_scale
        return observations / self._obs_scale, rewards, dones, infos

    def reset(self):
        return self.venv.reset() / self._obs_scale


class WelfareRecorder(VecEnvWrapper):
    """Records, every step of a :class:`~planners.shared.SharedPlannerVecEnv`, the welfare ``W``
    of each copy's joint action, averaged over the copies (the designer's measurement, not
    given to the planner)."""

    def __init__(self, venv: SharedPlannerVecEnv):
        super().__init__(venv)
        self._game = venv.shared.game
        self._n_agents = venv.n_agents
        self.welfare: list[float] = []

    def step_async(self, actions):
        joint = np.asarray(actions, dtype=np.float64).reshape(-1, self._n_agents)
        self.welfare.append(float(np.mean([self._game.welfare(x) for x in joint])))
        self.venv.step_async(actions)

    def step_wait(self):
        return self.venv.step_wait()

    def reset(self):
        return self.venv.reset()


def deterministic_welfare(model: PPO, incentive: np.ndarray, seed: int) -> float:
    """Mean ``W`` over the last half of ``EVAL_ROUNDS`` rounds of ``model``'s deterministic
    policy in a fresh copy at the fixed ``incentive``."""
    env = cournot_v0.parallel_env(max_cycles=EVAL_ROUNDS, incentive=incentive, **GAME)
    game, scale = env.game, observation_scales(env.game).astype(np.float32)
    low = np.stack([env.action_space(agent).low for agent in env.possible_agents]).astype(np.float64)
    high = np.stack([env.action_space(agent).high for agent in env.possible_agents]).astype(np.float64)
    observations, _ = env.reset(seed=seed)
    observations = np.stack([observations[agent] for agent in env.possible_agents])
    played = []
    for _ in range(EVAL_ROUNDS):
        action, _ = model.predict(observations / scale, deterministic=True)
        observations, _, _ = env.step_arrays(to_env_actions(action, low, high))
        played.append(game.welfare(env.strategy))
    return float(np.mean(played[EVAL_ROUNDS // 2 :]))


def run(planner: str, seed: int, rounds: int, n_copies: int, n_steps: int, warmup_rollouts: int) -> dict:
    """One PPO training run under ``planner``; returns the welfare curve and final numbers."""
    torch.set_num_threads(1)

    def make_copy():
        return cournot_v0.parallel_env(max_cycles=MAX_CYCLES, **GAME)

    game = make_copy().game
    shared = SharedPlanner(make_planner(planner, game), n_steps, warmup_rollouts * n_steps)
    recorder = WelfareRecorder(SharedPlannerVecEnv(make_copy, n_copies, shared))
    vec = VecNormalize(
        ScaledActionsObservations(recorder, observation_scales(game)),
        norm_obs=False,
        norm_reward=True,
        gamma=0.0,
    )
    model = PPO("MlpPolicy", vec, n_steps=n_steps, seed=seed, verbose=0, **PPO_KWARGS)
    started = time.perf_counter()
    model.learn(rounds * n_copies * game.params.n)
    train_s = time.perf_counter() - started
    welfare = np.asarray(recorder.welfare[:rounds], dtype=np.float64)
    tail = max(1, len(welfare) // 10)
    keep = np.unique(np.linspace(0, len(welfare) - 1, min(CURVE_POINTS, len(welfare))).astype(int))
    block = max(1, len(welfare) // CURVE_POINTS)  # the curve: means over blocks ending at each kept round
    return {
        "planner": planner,
        "seed": seed,
        "final_welfare": float(welfare[-tail:].mean()),
        "deterministic_welfare": deterministic_welfare(model, shared.incentive, seed),
        "final_tax": shared.incentive.tolist(),
        "rounds": int(len(welfare)),
        "n_copies": n_copies,
        "planner_updates": shared.updates,
        "env_steps": int(len(welfare) * n_copies),
        "env_steps_per_s": float(len(welfare) * n_copies / train_s),
        "train_s": train_s,
        "curve": {
            "env_steps": ((keep + 1) * n_copies).tolist(),
            "welfare": [float(welfare[max(0, i - block + 1) : i + 1].mean()) for i in keep],
        },
    }


def summarise(runs: list[dict], w_star: float) -> dict:
    """``{"w_star", "runs", "summary"}``: each run's gaps closed (for ``final_welfare`` and, when
    present, ``deterministic_welfare``), per-planner means and stds, and whether the target is met."""
    keys = [key for key in ("final_welfare", "deterministic_welfare") if key in runs[0]]
    gaps = {"final_welfare": "gap_closed", "deterministic_welfare": "deterministic_gap_closed"}
    summary = {}
    for key in keys:
        none = float(np.mean([r[key] for r in runs if r["planner"] == "none"]))
        summary[f"none_{key}_mean"] = none
        for r in runs:
            r[gaps[key]] = (r[key] - none) / (w_star - none)
    for planner in PLANNERS:
        mine = [r for r in runs if r["planner"] == planner]
        summary[planner] = {
            name + suffix: float(fn([r[name] for r in mine]))
            for name in [*keys, *(gaps[key] for key in keys), "env_steps_per_s"]
            for suffix, fn in (("_mean", np.mean), ("_std", np.std))
        }
    summary["target_met"] = bool(all(summary[p]["gap_closed_mean"] >= TARGET for p in ADAPTIVE))
    return {"w_star": w_star, "runs": runs, "summary": summary}


def _percent(fraction: float) -> str:
    text = f"{100 * fraction:.1f}%"
    return "0.0%" if text == "-0.0%" else text


def report(result: dict, title: str) -> None:
    """Print the per-planner table of ``result`` (see :func:`summarise`)."""
    s, seeds = result["summary"], result["settings"]["seeds"]
    print(f"\n{title}. W* = {result['w_star']:.2f}; mean ± std over {seeds} seeds")
    determ = "deterministic_welfare_mean" in s["none"]
    header = f"{'planner':<19}{'W (last 10%)':>20}{'gap closed':>12}{'env steps/s':>13}"
    print(header + (f"{'W (determ.)':>20}{'gap closed':>12}" if determ else ""))
    for planner in PLANNERS:
        t = s[planner]
        line = (
            f"{planner:<19}{t['final_welfare_mean']:>11.1f} ± {t['final_welfare_std']:<6.1f}"
            f"{_percent(t['gap_closed_mean']):>12}{t['env_steps_per_s_mean']:>13.0f}"
        )
        if determ:
            line += (
                f"{t['deterministic_welfare_mean']:>11.1f} ± {t['deterministic_welfare_std']:<6.1f}"
                f"{_percent(t['deterministic_gap_closed_mean']):>12}"
            )
        print(line)
    print(f"\ntarget (both adaptive planners >= {TARGET:.0%} of the gap): {s['target_met']}")
    print(f"{len(result['runs'])} runs in {result['wall_time_s']:.0f} s")


def run_grid(run_one, seeds: int, settings: dict, described: dict) -> dict:
    """Every planner × seed through ``run_one(planner, seed, **settings)``, a line printed per run;
    returns :func:`summarise`'s payload with the settings (``described`` adds to them)."""
    runs = []
    for planner in PLANNERS:
        for seed in range(seeds):
            runs.append(run_one(planner, seed, **settings))
            print(
                f"{planner:<18} seed {seed}: W = {runs[-1]['final_welfare']:8.1f}  "
                f"{runs[-1]['env_steps_per_s']:6.0f} env steps/s  {runs[-1]['planner_updates']} planner updates",
                flush=True,
            )
    payload = summarise(runs, float(-cournot_v0.parallel_env(**GAME).game.social_optimum().value))
    payload["settings"] = {**settings, "seeds": seeds, "game": GAME, "step_sizes": STEP_SIZES, **described}
    return payload


def experiment(seeds: int, settings: dict) -> dict:
    """All planners × seeds; returns the JSON payload (without wall time)."""
    return run_grid(
        run,
        seeds,
        settings,
        {
            "max_cycles": MAX_CYCLES,
            "ppo": PPO_KWARGS,
            "final_welfare": "mean W of the played (sampled) outputs over the last 10% of training rounds",
            "deterministic_welfare": "final deterministic policy at the frozen final tax, mean over the last "
            f"{EVAL_ROUNDS // 2} of {EVAL_ROUNDS} rounds",
        },
    )


def plot(result: dict, path, title: str) -> None:
    """Welfare of the played outputs vs env steps, mean ± std over seeds per planner, and ``W*``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.5, 4.2))
    for planner in PLANNERS:
        curves = [r["curve"] for r in result["runs"] if r["planner"] == planner]
        steps = np.asarray(curves[0]["env_steps"])
        welfare = np.array([np.interp(steps, c["env_steps"], c["welfare"]) for c in curves])
        mean, std = welfare.mean(axis=0), welfare.std(axis=0)
        axis.plot(steps, mean, label=planner)
        axis.fill_between(steps, mean - std, mean + std, alpha=0.25)
    best = result["w_star"]
    axis.axhline(best, color="black", linestyle="--", linewidth=1, label="W*")
    low = min(result["summary"]["none_final_welfare_mean"], 0.0)
    axis.set_ylim(low - 0.3 * (best - low), best + 0.1 * (best - low))
    axis.set_xlabel("env steps (rounds of one env, summed over all envs)")
    axis.set_ylabel("welfare W of played outputs")
    axis.set_title(title)
    axis.legend(fontsize=8)
    figure.tight_layout()
    save_figure_atomic(figure, path)
    plt.close(figure)


def cli(argv, description: str, run_experiment, quick: dict, full: dict, title: str) -> dict:
    """The command line of the follower scripts: ``--json PATH --plot PATH [--seeds N] [--quick]``;
    runs ``run_experiment(seeds, settings)``, prints the table, writes the JSON and the plot."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--json", required=True)
    parser.add_argument("--plot", required=True)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help=f"smoke test: {quick}")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds!r}")
    torch.set_num_threads(1)
    started = time.perf_counter()
    result = run_experiment(args.seeds, quick if args.quick else full)
    result["wall_time_s"] = time.perf_counter() - started
    report(result, title)
    write_json_atomic(args.json, result)
    plot(result, args.plot, f"Cournot n=10, k=1: {title}")
    print(f"wrote {args.json} and {args.plot}")
    return result


def main(argv=None) -> dict:
    return cli(
        argv, __doc__.splitlines()[0], experiment, QUICK, FULL, "SB3 PPO firms, one planner over copies"
    )


if __name__ == "__main__":
    main()
