"""``oscillators_v0``: coupled oscillators with planner-set linear prices on phases (SPEC G4).

=====================  ==================================================================
Agents                 ``oscillator_0 … oscillator_{n-1}`` (default n = 100)
Action space           ``Box(−π, π, (1,), float32)``: the agent's phase this round
Observation space      ``Box(4,)``: ``[own price, order parameter R, mean phase ψ, own phase]``
State space            ``Box(2n,)``: ``[phases, prices]``
Parameters             :class:`OscillatorsConfig`: ``n_agents, coupling, externality,
                       price_bounds, instance_seed, max_cycles, feedback_noise_std``;
                       plus ``incentive, render_mode``
=====================  ==================================================================

Each round agent ``i`` picks a phase and pays ``½ r_i (x^i − ω_i)² + (K/n) Σ_j (1 − cos(x^i − x^j))
+ p_i x^i``; its reward is minus that cost. Defaults: ``r_i ~ U[2, 3]``, ``ω_i ~ U[−1, 1]``
(from ``instance_seed``), ``K = 0.2``, ``κ = 0.4``, prices in ``[−2, 2]``: a strongly monotone
potential game with a strongly convex social cost, equilibria and optimum strictly inside
the box (see :mod:`incentive_envs.oscillators.game` for the bounds that guarantee this).

Incentives
----------
Per-agent linear prices on phases, set between rounds with ``env.set_incentive(p)``. The
planner's cost ``Φ`` adds a synchronisation externality ``(κ/n) Σ_{i<j}(1 − cos(x^i − x^j))``.
``infos[agent]["gradient"]`` is ``−∂(J_i + p_i x^i)/∂x^i`` (plus optional Gaussian noise).
One step is O(n) on the array path through the order parameter ``R e^{iψ}``.

Version history
---------------
* v0: initial release.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from incentive_envs.env import (
    MAX_AGENTS,
    IncentiveParallelEnv,
    StageGameConfig,
    env_constructors,
    observation_columns,
)
from incentive_envs.oscillators.game import OscillatorGame, OscillatorParams
from incentive_envs.validation import build_config, check_positive_int, check_seed


@dataclass(frozen=True, kw_only=True)
class OscillatorsConfig(StageGameConfig):
    """Parameters of ``oscillators_v0`` (defaults: the instance of the module docstring)."""

    n_agents: int = 100
    """Number of oscillators ``n``."""
    coupling: float = 0.2
    """The agents' own coupling ``K >= 0``."""
    externality: float = 0.4
    """Synchronisation externality ``κ >= 0`` in the social cost."""
    price_bounds: tuple[float, float] = (-2.0, 2.0)
    """Bounds of every price ``p_i``."""
    instance_seed: int = 0
    """Seed of ``r_i ~ U[2, 3]`` and ``ω_i ~ U[−1, 1]`` (the game instance)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "n_agents", check_positive_int(self.n_agents, "n_agents", MAX_AGENTS))
        object.__setattr__(self, "instance_seed", check_seed(self.instance_seed, "instance_seed"))


def oscillator_game(config: OscillatorsConfig) -> OscillatorGame:
    """The model of the game ``config`` describes."""
    return OscillatorGame(
        OscillatorParams.default(
            config.n_agents,
            seed=config.instance_seed,
            coupling=config.coupling,
            externality=config.externality,
            price_bounds=config.price_bounds,
        )
    )


class OscillatorEnv(IncentiveParallelEnv):
    """The ``oscillators_v0`` parallel environment (see the module docstring).

    Parameters
    ----------
    incentive : array_like, optional
        Initial prices; default 0.
    render_mode : {None, "ansi", "human"}
    **params
        The fields of :class:`OscillatorsConfig`.
    """

    metadata = {"render_modes": ["ansi", "human"], "name": "oscillators_v0", "is_parallelizable": True}

    def __init__(self, *, incentive=None, render_mode: str | None = None, **params):
        config = build_config(OscillatorsConfig, params, "oscillators_v0")
        super().__init__(
            oscillator_game(config), "oscillator", config, incentive=incentive, render_mode=render_mode
        )

    def _observation_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        low, high = self.game.params.price_bounds
        return np.array([low, 0.0, -np.pi, -np.pi]), np.array([high, 1.0, np.pi, np.pi])

    def _observations(self, strategy: np.ndarray, incentive: np.ndarray) -> np.ndarray:
        radius, angle = self.game.order_parameter(strategy)
        return observation_columns(incentive, min(radius, 1.0), angle, strategy)


parallel_env, raw_env = env_constructors(OscillatorEnv)
env = raw_env
