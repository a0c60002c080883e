"""Deep-RL followers: do the slow-timescale planners still work when the firms are PPO agents?

Cournot (``cournot_v0``) with ``n = 10`` firms, production-cost curvature ``k = 1`` and an
output cap of 40 (the Nash outputs at zero tax are ≈ 8, the first-best ones ≤ 29). The firms
are one Stable-Baselines3 PPO policy shared by all of them (parameter sharing through
:func:`agents.rl.make_vec_env`), a Gaussian MLP policy on the 1-D output, observing
``[own tax, last price, own last output]`` (scaled by fixed constants). The stage game is
repeated: PPO uses ``γ = 0`` (each round is a contextual bandit — the firms best-respond
myopically, as the game's Nash equilibrium assumes), the episode never ends during training
(``max_cycles`` exceeds the run, so the planner's state is never reset), actions are
PPO outputs in ``[-1, 1]`` mapped affinely to ``[0, 40]`` and rewards are normalised by
``VecNormalize`` (running scale only).

Planners act through :class:`planners.wrapper.PlannerWrapper` on the slow timescale: every
``K`` rounds (``K`` = one PPO rollout of ``n_steps`` rounds), after a warm-up of a few
rollouts during which the tax stays at 0, the planner takes one step from the *average* of
the joint actions the firms played in those ``K`` rounds (:class:`WindowAveragedPlanner`;
averaging removes most of PPO's sampling noise). Planners:

* ``none``: no tax (:class:`planners.baselines.NoIncentivePlanner`);
* ``social_gradient``: ``θ ← Proj(θ + α ∇_xΦ(x̄))`` (:class:`planners.social_gradient.SocialGradientPlanner`),
  observes only the played actions and the social cost's gradient;
* ``implicit_gradient``: :class:`planners.single_loop.SingleLoopPlanner` (implicit
  hypergradient at the observed ``x̄`` from the game model), constant step;
* ``oracle``: the first-best tax from the start (:class:`planners.baselines.OraclePlanner`) —
  the bound of what PPO followers reach given their own noise.

Welfare: ``W(x) = −social_cost`` of the outputs the firms actually played (sampled actions,
exploration noise included). A run's ``final_welfare`` is the mean of ``W`` over the last
10% of training rounds; ``deterministic_welfare`` is also reported: the final deterministic
(mean-action) policy played for 200 rounds at the final tax (frozen), averaged over the last
100. ``gap_closed = (W − W̄_none)/(W* − W̄_none)`` with ``W̄_none`` the mean final welfare of the
``none`` runs and ``W* = −game.social_optimum().value``. Target: both adaptive planners
close ≥ 80% of the gap.

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
from tqdm import tqdm

from agents import EuclideanMirrorDescent
from agents.rl import make_vec_env
from incentive_envs import cournot_v0
from incentive_envs.io import save_figure_atomic, write_json_atomic
from planners.base import Planner
from planners.baselines import NoIncentivePlanner, OraclePlanner
from planners.single_loop import SingleLoopPlanner
from planners.social_gradient import SocialGradientPlanner
from planners.wrapper import PlannerWrapper

PLANNERS = ("none", "social_gradient", "implicit_gradient", "oracle")
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
FULL = {"rounds": 24_000, "n_steps": 64, "warmup_rollouts": 10}
QUICK = {"rounds": 640, "n_steps": 32, "warmup_rollouts": 2}
CURVE_POINTS = 120
EVAL_ROUNDS = 200


class WindowAveragedPlanner(Planner):
    """Runs ``inner`` on the average of the joint actions of every ``window`` rounds.

    Used with ``PlannerWrapper(update_every=1)``: it sees every round's joint action, logs
    its welfare, and every ``window`` rounds (after ``warmup`` rounds at the initial
    incentive) steps ``inner`` once from the window's mean action. Information structure:
    that of ``inner`` (the played actions only).
    """

    def __init__(self, inner: Planner, window: int, warmup: int = 0):
        super().__init__(inner.game)
        self.inner, self.window, self.warmup = inner, int(window), int(warmup)
        self.name = inner.name
        self.frozen = False
        self.welfare: list[float] = []
        self._sum = np.zeros(inner.game.strategy_set.dim)
        self._count = 0
        self._steps = 0

    def initial_incentive(self) -> np.ndarray:
        return self.inner.initial_incentive()

    def _update(self, theta, x, k):
        self.welfare.append(self.game.welfare(x))
        if self.frozen:
            return theta
        self._steps += 1
        if self._steps <= self.warmup:
            return theta
        self._sum += x
        self._count += 1
        if self._count < self.window:
            return theta
        mean, self._sum, self._count = self._sum / self._count, np.zeros_like(self._sum), 0
        return self.inner._update(theta, mean, (self._steps - self.warmup) // self.window - 1)


class ScaledActionsObservations(VecEnvWrapper):
    """PPO acts in ``[-1, 1]``, mapped affinely to ``[low, high]``; observations divided by
    fixed scales."""

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
        actions = np.clip(np.asarray(actions, dtype=np.float64), -1.0, 1.0)
        self.venv.step_async(self._low + 0.5 * (actions + 1.0) * (self._high - self._low))

    def step_wait(self):
        observations, rewards, dones, infos = self.venv.step_wait()
        for info in infos:
            if "terminal_observation" in info:
                info["terminal_observation"] = info["terminal_observation"] / self._obs_scale
        return observations / self._obs_scale, rewards, dones, infos

    def reset(self):
        return self.venv.reset() / self._obs_scale


def make_planner(name: str, game) -> Planner:
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


def run(planner: str, seed: int, rounds: int, n_steps: int, warmup_rollouts: int, progress=None) -> dict:
    """One PPO training run under ``planner``; returns the welfare trace and final numbers."""
    torch.set_num_threads(1)
    env = cournot_v0.parallel_env(max_cycles=rounds + 10 * n_steps + EVAL_ROUNDS + 10, **GAME)
    game = env.game
    inner = make_planner(planner, game)
    wrapped = PlannerWrapper(env, WindowAveragedPlanner(inner, n_steps, warmup_rollouts * n_steps), 1)
    base_vec = make_vec_env(wrapped, 1, seed=seed)
    p = game.params
    scales = np.array([max(abs(b) for b in p.tax_bounds), p.p0, p.output_cap])
    vec = VecNormalize(
        ScaledActionsObservations(base_vec, scales), norm_obs=False, norm_reward=True, gamma=0.0
    )
    n_agents = p.n
    model = PPO("MlpPolicy", vec, n_steps=n_steps, seed=seed, verbose=0, **PPO_KWARGS)
    callback = None
    if progress is not None:
        from stable_baselines3.common.callbacks import BaseCallback

        class Progress(BaseCallback):
            def _on_step(self) -> bool:
                progress(1)
                return True

        callback = Progress()
    model.learn(rounds * n_agents, callback=callback)
    copy = base_vec.envs[0]
    tracker = copy.planner
    welfare = np.asarray(tracker.welfare, dtype=np.float64)[:rounds]
    tail = max(1, len(welfare) // 10)
    final_tax = copy.incentive

    # the final deterministic policy, at the final (frozen) tax
    tracker.frozen = True
    played = []
    obs = model._last_obs
    for _ in range(EVAL_ROUNDS):
        action, _ = model.predict(obs, deterministic=True)
        obs, _, _, _ = vec.step(action)
        played.append(copy.game.welfare(copy.unwrapped.strategy))
    keep = np.unique(np.linspace(0, len(welfare) - 1, min(CURVE_POINTS, len(welfare))).astype(int))
    # smooth the curve: mean over blocks ending at each kept index
    block = max(1, len(welfare) // CURVE_POINTS)
    smoothed = [float(welfare[max(0, i - block + 1) : i + 1].mean()) for i in keep]
    return {
        "planner": planner,
        "seed": seed,
        "final_welfare": float(welfare[-tail:].mean()),
        "deterministic_welfare": float(np.mean(played[EVAL_ROUNDS // 2 :])),
        "final_tax": final_tax.tolist(),
        "final_strategy": copy.unwrapped.strategy.tolist(),
        "rounds": int(len(welfare)),
        "curve": {"env_steps": (keep + 1).tolist(), "welfare": smoothed},
    }


def w_star() -> float:
    return float(-cournot_v0.parallel_env(**GAME).game.social_optimum().value)


def experiment(seeds: int, settings: dict, show_progress: bool = True) -> dict:
    """All planners × seeds; returns the JSON payload (without wall time)."""
    runs = []
    grid = [(planner, seed) for planner in PLANNERS for seed in range(seeds)]
    with tqdm(total=len(grid) * settings["rounds"], desc="rounds", disable=not show_progress) as bar:
        for planner, seed in grid:
            started = time.perf_counter()
            record = run(planner, seed, progress=bar.update, **settings)
            record["wall_s"] = time.perf_counter() - started
            runs.append(record)
    best = w_star()
    none_mean = float(np.mean([r["final_welfare"] for r in runs if r["planner"] == "none"]))
    none_det = float(np.mean([r["deterministic_welfare"] for r in runs if r["planner"] == "none"]))
    for r in runs:
        r["gap_closed"] = (r["final_welfare"] - none_mean) / (best - none_mean)
        r["deterministic_gap_closed"] = (r["deterministic_welfare"] - none_det) / (best - none_det)
    summary = {}
    for planner in PLANNERS:
        mine = [r for r in runs if r["planner"] == planner]
        summary[planner] = {
            key + suffix: float(fn([r[key] for r in mine]))
            for key in ("final_welfare", "gap_closed", "deterministic_welfare", "deterministic_gap_closed")
            for suffix, fn in (("_mean", np.mean), ("_std", np.std))
        }
    summary["none_welfare_mean"] = none_mean
    summary["target_met"] = bool(
        all(summary[p]["gap_closed_mean"] >= 0.8 for p in ("social_gradient", "implicit_gradient"))
    )
    return {
        "w_star": best,
        "runs": runs,
        "summary": summary,
        "settings": {
            **settings,
            "seeds": seeds,
            "game": GAME,
            "step_sizes": STEP_SIZES,
            "ppo": {k: v for k, v in PPO_KWARGS.items()},
            "final_welfare": "mean W of the played (sampled) outputs over the last 10% of training rounds",
            "deterministic_welfare": f"final deterministic policy at the frozen final tax, mean over the last {EVAL_ROUNDS // 2} of {EVAL_ROUNDS} rounds",
        },
    }


def _percent(fraction: float) -> str:
    text = f"{100 * fraction:.1f}%"
    return "0.0%" if text == "-0.0%" else text


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True)
    parser.add_argument("--plot", required=True)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help=f"smoke test: {QUICK}")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds!r}")
    torch.set_num_threads(1)
    settings = QUICK if args.quick else FULL
    started = time.perf_counter()
    result = experiment(args.seeds, settings)
    result["wall_time_s"] = time.perf_counter() - started
    s, best = result["summary"], result["w_star"]
    print(f"\nW* = {best:.2f}; final welfare (mean ± std over {args.seeds} seeds)")
    print(f"{'planner':<19}{'W (last 10%)':>20}{'gap closed':>12}{'W (determ.)':>20}{'gap closed':>12}")
    for planner in PLANNERS:
        t = s[planner]
        print(
            f"{planner:<19}{t['final_welfare_mean']:>11.1f} ± {t['final_welfare_std']:<6.1f}"
            f"{_percent(t['gap_closed_mean']):>12}"
            f"{t['deterministic_welfare_mean']:>11.1f} ± {t['deterministic_welfare_std']:<6.1f}"
            f"{_percent(t['deterministic_gap_closed_mean']):>12}"
        )
    print(f"\ntarget (both adaptive planners >= 80% of the gap): {s['target_met']}")
    print(f"{len(result['runs'])} runs in {result['wall_time_s']:.0f} s")
    write_json_atomic(args.json, result)
    plot(result, args.plot)
    print(f"wrote {args.json} and {args.plot}")
    return result


def plot(result: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.5, 4.2))
    for planner in PLANNERS:
        curves = [r["curve"] for r in result["runs"] if r["planner"] == planner]
        steps = np.asarray(curves[0]["env_steps"])
        welfare = np.array([c["welfare"] for c in curves])
        mean, std = welfare.mean(axis=0), welfare.std(axis=0)
        axis.plot(steps, mean, label=planner)
        axis.fill_between(steps, mean - std, mean + std, alpha=0.25)
    axis.axhline(result["w_star"], color="black", linestyle="--", linewidth=1, label="W*")
    low = min(np.mean([r["final_welfare"] for r in result["runs"] if r["planner"] == "none"]), 0.0)
    axis.set_ylim(low - 0.3 * (result["w_star"] - low), result["w_star"] + 0.1 * (result["w_star"] - low))
    axis.set_xlabel("env steps (rounds)")
    axis.set_ylabel("welfare W of played outputs")
    axis.set_title("Cournot n=10, k=1: PPO firms")
    axis.legend(fontsize=8)
    figure.tight_layout()
    save_figure_atomic(figure, path)
    plt.close(figure)


if __name__ == "__main__":
    main()
