"""``cournot_v0``: Cournot oligopoly with a planner-set emission tax.

=====================  ==================================================================
Agents                 ``firm_0 … firm_{n-1}`` (default n = 100)
Action space           ``Box(0, a_max, (1,), float32)``: the firm's output this round
Observation space      ``Box(3,)``: ``[own tax π^i, last market price p(Q), own last output]``
State space            ``Box(2n,)``: ``[outputs, taxes]``
Parameters             :class:`CournotConfig`: ``n_firms, k, p0, gamma, tau,
                       emission_noise_std, instance_seed, max_output, tax_bounds,
                       max_cycles, feedback_noise_std``; plus ``incentive, render_mode``
=====================  ==================================================================

One round is one play of the stage game of paper Example 3.1 / SPEC G1: every firm picks
an output, the market clears at ``p(Q) = p0 − γQ``, and firm ``i`` earns the profit net of
tax ``a^i p(Q) − c^i a^i − (k/2)(a^i)^2 − π^i a^i``.

Incentives
----------
The planner's incentive is the tax vector ``π`` (one tax per firm, within ``tax_bounds``;
negative values are subsidies). Set it between rounds with ``env.set_incentive(π)`` or at
``reset(options={"incentive": π})``. The planner's cost is ``−W(a)``, minus social welfare
(consumer surplus minus production cost minus emission damage ``τ Σ d^i a^i``); the full
model — exact equilibrium, first best ``W*``, Jacobian products — is ``env.game``
(:class:`~incentive_envs.cournot.game.CournotGame`).

Feedback
--------
``infos[firm]["gradient"]`` is the firm's marginal profit ``v^i`` at the outputs just
played, plus ``N(0, feedback_noise_std²)`` noise; ``infos[firm]["best_response"]`` its exact
best response. ``reset(options={"initial_strategy": a0})`` sets the profile the first
feedback refers to (default: all outputs 0).

Version history
---------------
* v0: initial release.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from incentive_envs.cournot.game import PAPER_EMISSION_NOISE_STD, CournotGame, CournotParams
from incentive_envs.env import (
    MAX_AGENTS,
    IncentiveParallelEnv,
    StageGameConfig,
    env_constructors,
    observation_columns,
)
from incentive_envs.validation import build_config, check_positive_int, check_seed


@dataclass(frozen=True, kw_only=True)
class CournotConfig(StageGameConfig):
    """Parameters of ``cournot_v0`` (defaults: the paper's §7 instance)."""

    n_firms: int = 100
    """Number of firms ``n``."""
    k: float = 0.0
    """Production-cost curvature ``k >= 0`` (paper: 0; ``k > 0`` makes the optimum unique)."""
    p0: float = 100.0
    """Inverse-demand intercept ``p0 > 0``."""
    gamma: float = 1.0
    """Inverse-demand slope ``γ > 0``."""
    tau: float = 10.0
    """Social damage per unit of emission ``τ >= 0``."""
    emission_noise_std: float = PAPER_EMISSION_NOISE_STD
    """Standard deviation of ``ε^i`` in the emission rates ``d^i = 10 − exp(c^i) + ε^i``."""
    instance_seed: int = 0
    """Seed of the emission-rate noise (the game instance)."""
    max_output: float | None = None
    """Output cap ``a_max``; ``None`` means ``p0 / γ``."""
    tax_bounds: tuple[float, float] | None = None
    """Bounds of every firm's tax; ``None`` means ``(−p0, p0)`` (negative taxes are subsidies)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "n_firms", check_positive_int(self.n_firms, "n_firms", MAX_AGENTS))
        object.__setattr__(self, "instance_seed", check_seed(self.instance_seed, "instance_seed"))


def cournot_game(config: CournotConfig) -> CournotGame:
    """The model of the game ``config`` describes."""
    return CournotGame(
        CournotParams.paper(
            config.n_firms,
            p0=config.p0,
            gamma=config.gamma,
            tau=config.tau,
            k=config.k,
            emission_noise_std=config.emission_noise_std,
            seed=config.instance_seed,
            max_output=config.max_output,
            tax_bounds=config.tax_bounds,
        )
    )


class CournotEnv(IncentiveParallelEnv):
    """The ``cournot_v0`` parallel environment (see the module docstring).

    Parameters
    ----------
    incentive : array_like, optional
        Initial tax vector; default 0.
    render_mode : {None, "ansi", "human"}
    **params
        The fields of :class:`CournotConfig`.
    """

    metadata = {"render_modes": ["ansi", "human"], "name": "cournot_v0", "is_parallelizable": True}

    def __init__(self, *, incentive=None, render_mode: str | None = None, **params):
        config = build_config(CournotConfig, params, "cournot_v0")
        super().__init__(cournot_game(config), "firm", config, incentive=incentive, render_mode=render_mode)

    def _observation_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        p = self.game.params
        low_tax, high_tax = p.tax_bounds
        lowest_price = p.p0 - p.gamma * p.n * p.output_cap
        return np.array([low_tax, lowest_price, 0.0]), np.array([high_tax, p.p0, p.output_cap])

    def _observations(self, strategy: np.ndarray, incentive: np.ndarray) -> np.ndarray:
        return observation_columns(incentive, self.game.price(strategy), strategy)

    def _render_text(self) -> str:
        text = super()._render_text()
        return f"{text}  price {self.game.price(self._strategy):.6g}  total output {self._strategy.sum():.6g}"


parallel_env, raw_env = env_constructors(CournotEnv)
env = raw_env
