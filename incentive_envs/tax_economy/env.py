"""``tax_economy_v0``: workers choose labour under a planner-set bracketed income tax.

=====================  ==================================================================
Agents                 ``worker_0 … worker_{n-1}`` (default n = 100)
Action space           ``Box(0, L̄, (1,), float32)``: the worker's labour this round
                       (default ``L̄ = 100`` hours)
Observation space      ``Box(4 + B,)``: ``[own skill s_i, own last income z_i, own last coin
                       c_i, last lump sum T, θ_1 … θ_B]`` (B = 7 brackets)
State space            ``Box(n + B,)``: ``[labour, rates]``
Parameters             :class:`TaxEconomyConfig`: ``n_workers, skill_shape, skill_scale,
                       max_labour, coin_per_usd, eta, labour_cost, endowment, instance_seed,
                       labour_levels, max_cycles, feedback_noise_std``; plus ``incentive,
                       render_mode``
=====================  ==================================================================

One round is one tax period of the economy of :mod:`incentive_envs.tax_economy.game` (SPEC G6;
the labour-choice core of the AI Economist, Zheng et al. 2022, Science Advances 8(18)): every
worker picks its labour ``l_i``, earns ``z_i = s_i l_i``, pays ``τ_θ(z_i)`` under the bracketed
schedule (the 2018 US federal single-filer cutoffs, 1 coin = 1,000 USD), and all revenue
comes back as an equal lump sum ``T``. Its reward is its utility
``(c_i^{1−η} − 1)/(1 − η) − κ l_i`` of coin ``c_i = e + z_i − τ_θ(z_i) + T`` (``η = 0.23``,
``κ = 0.21``, endowment ``e = 1``). Skills are Pareto with shape 1.5 and minimum 0.3, drawn
from ``instance_seed``.

Incentives
----------
The planner's incentive is the vector of seven marginal rates ``θ ∈ [0, 1]^7``, set between
rounds with ``env.set_incentive(θ)`` or at ``reset(options={"incentive": θ})`` (default: no
tax). The planner's cost is ``−equality × productivity`` of coin; the full model — exact
best responses, the exact equilibrium (a fixed point in the lump sum), Jacobian products and
their diagonal-plus-rank-one structure, exact hypergradients, the baselines (free market, US
federal, Saez) and the optimum found by global search — is ``env.game``
(:class:`~incentive_envs.tax_economy.game.TaxEconomyGame`).

Feedback
--------
``infos[worker]["gradient"]`` is the worker's marginal utility of labour ``v_i`` at the
profile just played, holding the lump sum fixed (workers are price-takers), plus
``N(0, feedback_noise_std²)`` noise; ``infos[worker]["best_response"]`` its exact best labour
to that lump sum. ``reset(options={"initial_strategy": l0})`` sets the profile the first
feedback refers to (default: nobody works, coin = ``e``).

Version history
---------------
* v0: initial release.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from incentive_envs.env import MAX_AGENTS, IncentiveParallelEnv, StageGameConfig, env_constructors
from incentive_envs.tax_economy.game import (
    COIN_PER_USD,
    ISOELASTIC_ETA,
    LABOUR_COST,
    TaxEconomyGame,
    TaxEconomyParams,
    equality,
    productivity,
)
from incentive_envs.tax_economy.task import TaxEconomyTask
from incentive_envs.validation import build_config, check_int, check_positive_int, check_scalar, check_seed


@dataclass(frozen=True, kw_only=True)
class TaxEconomyConfig(StageGameConfig):
    """Parameters of ``tax_economy_v0`` (defaults: the instance of the module docstring)."""

    n_workers: int = 100
    """Number of workers ``n >= 2``."""
    skill_shape: float = 1.5
    """Pareto shape ``α > 0`` of the skills (with the labour cap, also the income tail's)."""
    skill_scale: float = 0.3
    """Minimum skill, in coin per unit of labour (> 0)."""
    max_labour: float = 100.0
    """Top of every worker's labour box ``L̄ > 0``."""
    coin_per_usd: float = COIN_PER_USD
    """Income scale: the US bracket cutoffs in USD are multiplied by this (> 0)."""
    eta: float = ISOELASTIC_ETA
    """``η ∈ (0, 1)`` of the isoelastic utility of coin."""
    labour_cost: float = LABOUR_COST
    """``κ > 0``, disutility per unit of labour."""
    endowment: float = 1.0
    """Coin ``e > 0`` every worker holds before earning."""
    instance_seed: int = 0
    """Seed of the skill draws (the game instance)."""
    labour_levels: int = 21
    """Labour levels ``0, L̄/(K−1), …, L̄`` of policy-gradient workers (the episodic task only)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        n_workers = check_positive_int(self.n_workers, "n_workers", MAX_AGENTS)
        if n_workers < 2:
            raise ValueError(f"n_workers must be at least 2 (equality needs two workers), got {n_workers!r}")
        object.__setattr__(self, "n_workers", n_workers)
        object.__setattr__(self, "instance_seed", check_seed(self.instance_seed, "instance_seed"))
        object.__setattr__(
            self, "labour_levels", check_int(self.labour_levels, "labour_levels", low=2, high=10_001)
        )
        for name in ("skill_shape", "skill_scale"):
            object.__setattr__(
                self, name, check_scalar(getattr(self, name), name, low=0.0, low_inclusive=False)
            )


def tax_economy_game(config: TaxEconomyConfig) -> TaxEconomyGame:
    """The model of the game ``config`` describes."""
    return TaxEconomyGame(
        TaxEconomyParams.pareto(
            config.n_workers,
            shape=config.skill_shape,
            scale=config.skill_scale,
            seed=config.instance_seed,
            coin_per_usd=config.coin_per_usd,
            eta=config.eta,
            labour_cost=config.labour_cost,
            max_labour=config.max_labour,
            endowment=config.endowment,
        )
    )


def tax_economy_task(config: TaxEconomyConfig) -> TaxEconomyTask:
    """The episodic task of the game ``config`` describes (policy-gradient workers)."""
    return TaxEconomyTask(tax_economy_game(config), config.labour_levels)


class TaxEconomyEnv(IncentiveParallelEnv):
    """The ``tax_economy_v0`` parallel environment (see the module docstring).

    Parameters
    ----------
    incentive : array_like, optional
        Initial marginal rates; default 0 (free market).
    render_mode : {None, "ansi", "human"}
    **params
        The fields of :class:`TaxEconomyConfig`.
    """

    metadata = {"render_modes": ["ansi", "human"], "name": "tax_economy_v0", "is_parallelizable": True}

    def __init__(self, *, incentive=None, render_mode: str | None = None, **params):
        config = build_config(TaxEconomyConfig, params, "tax_economy_v0")
        super().__init__(
            tax_economy_game(config), "worker", config, incentive=incentive, render_mode=render_mode
        )

    def _observation_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        p = self.game.params
        top_income = float(p.skill.max()) * p.max_labour  # T <= mean income <= top income
        low = np.concatenate(([float(p.skill.min()), 0.0, p.endowment, 0.0], np.zeros(p.n_brackets)))
        high = np.concatenate(
            (
                [float(p.skill.max()), top_income, p.endowment + 2.0 * top_income, top_income],
                np.ones(p.n_brackets),
            )
        )
        return low, high

    def _observations(self, strategy: np.ndarray, incentive: np.ndarray) -> np.ndarray:
        p = self.game.params
        n = p.n
        lump_sum = self.game._lump_sum(strategy, incentive)
        return np.concatenate(
            (
                np.stack(
                    (p.skill, p.skill * strategy, self.game._coin(strategy, incentive), np.full(n, lump_sum)),
                    axis=1,
                ),
                np.broadcast_to(incentive, (n, p.n_brackets)),
            ),
            axis=1,
        )

    def _render_text(self) -> str:
        coin = self.game._coin(self._strategy, self._incentive)
        return (
            f"{super()._render_text()}  lump sum {self.game._lump_sum(self._strategy, self._incentive):.6g}  "
            f"equality {equality(coin):.4f}  productivity {productivity(coin):.6g}"
        )


parallel_env, raw_env = env_constructors(TaxEconomyEnv)
env = raw_env
