"""The registry of learners: one source of truth for the CLI, the engine, the sweeps and the tests.

Each entry (:class:`LearnerSpec`) names a learner, documents its parameters (a frozen
dataclass with a docstring per field), builds it for a game, and declares what it needs:
the game capabilities it requires (see :mod:`incentive_envs.registry`) and whether it owns a
differentiable fixed-point map (what implicit-gradient and unrolled planners differentiate).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from agents.learners import (
    BestResponse,
    EntropicMirrorDescent,
    EuclideanMirrorDescent,
    Hedge,
    LogitBestResponse,
    jacobian_norm,
)
from agents.schedules import PowerSchedule
from incentive_envs.registry import CAPABILITIES, config_parameters
from incentive_envs.validation import build_config, check_int, check_scalar, check_seed


@dataclass(frozen=True)
class LearnerSpec:
    """One registered learner.

    Attributes
    ----------
    name : str
    description : str
        One line.
    feedback : str
        What it reads each iteration: ``"gradient"``, ``"best_response"``, ``"payoffs"`` or
        ``"rollouts"`` (played episodes, for policy-gradient learners).
    requires : frozenset of str
        Game capabilities it needs.
    differentiable : bool
        Whether it owns a differentiable fixed-point map.
    config : type
        Frozen dataclass of its parameters.
    factory : callable
        ``(game, config, seed) -> learner`` (``seed`` initialises learners with random parameters).
    """

    name: str
    description: str
    feedback: str
    requires: frozenset[str]
    differentiable: bool
    config: type
    factory: Callable

    def __post_init__(self) -> None:
        unknown = sorted(set(self.requires) - CAPABILITIES)
        if unknown:
            raise ValueError(f"requirements {unknown} of learner {self.name} are not capabilities")

    def make_config(self, **params):
        return build_config(self.config, params, f"learner {self.name}")

    def make(self, game, seed: int = 0, **params):
        """The learner for ``game`` with ``params`` (fields of :attr:`config`)."""
        return self.factory(game, self.make_config(**params), check_seed(seed))

    def parameters(self) -> dict[str, dict]:
        return config_parameters(self.config)


def _start_point(game) -> tuple[np.ndarray, np.ndarray]:
    incentive_set = game.incentive_set
    return game.strategy_set.uniform_point(), incentive_set.project(np.zeros(incentive_set.dim))


@dataclass(frozen=True)
class GradientPlayConfig:
    """Parameters of projected gradient play."""

    step_size: float | None = None
    """``β``; ``None``: ``step_scale / ‖∂v/∂x‖₂`` at the start (stable below 2 on potential games)."""
    step_scale: float = 1.5
    """Multiple of ``1/‖∂v/∂x‖₂`` used when ``step_size`` is ``None``, in ``(0, 1e6]`` (gradient
    play on a potential game is stable below 2)."""
    step_power: float = 0.0
    """``q`` of ``β_k = β/(k+1)^q`` (0: constant)."""

    def __post_init__(self) -> None:
        if self.step_size is not None:
            check_scalar(self.step_size, "step_size", low=0.0, low_inclusive=False)
        check_scalar(self.step_scale, "step_scale", low=0.0, high=1e6, low_inclusive=False)
        check_scalar(self.step_power, "step_power", low=0.0)


def _gradient_play(game, config: GradientPlayConfig, seed: int) -> EuclideanMirrorDescent:
    step = config.step_size
    if step is None:
        step = config.step_scale / jacobian_norm(game, *_start_point(game))
    return EuclideanMirrorDescent(game.strategy_set, PowerSchedule(step, config.step_power))


@dataclass(frozen=True)
class EntropicConfig:
    """Parameters of entropic mirror descent (defaults: Theorem 5.5's schedules, Figure 1's scales)."""

    step_size: float = 0.1
    """``β`` of ``β_k = β/(k+1)^{step_power}``."""
    step_power: float = 2.0 / 7.0
    """Theorem 5.5: 2/7."""
    mixing: float = 0.02
    """``ν`` of the mixing weight ``ν_k = ν/(k+1)^{mixing_power}`` (0 disables mixing)."""
    mixing_power: float = 4.0 / 7.0
    """Theorem 5.5: 4/7."""

    def __post_init__(self) -> None:
        check_scalar(self.step_size, "step_size", low=0.0, low_inclusive=False)
        check_scalar(self.step_power, "step_power", low=0.0)
        check_scalar(self.mixing, "mixing", low=0.0, high=1.0, high_inclusive=False)
        check_scalar(self.mixing_power, "mixing_power", low=0.0)


def _entropic(game, config: EntropicConfig, seed: int) -> EntropicMirrorDescent:
    return EntropicMirrorDescent(
        game.strategy_set,
        PowerSchedule(config.step_size, config.step_power),
        PowerSchedule(config.mixing, config.mixing_power),
    )


@dataclass(frozen=True)
class BestResponseConfig:
    """Parameters of inertial best response."""

    step_size: float = 0.1
    """Inertia ``β ∈ (0, 1]`` (1: simultaneous best response)."""

    def __post_init__(self) -> None:
        check_scalar(self.step_size, "step_size", low=0.0, high=1.0, low_inclusive=False)


@dataclass(frozen=True)
class LogitConfig:
    """Parameters of the logit (smoothed) best response."""

    temperature: float = 0.01
    """``η > 0`` in payoff units."""
    step_size: float = 0.2
    """Inertia ``β ∈ (0, 1]``."""
    grid_size: int = 2001
    """Actions per agent."""

    def __post_init__(self) -> None:
        check_scalar(self.temperature, "temperature", low=0.0, low_inclusive=False)
        check_scalar(self.step_size, "step_size", low=0.0, high=1.0, low_inclusive=False)
        check_int(self.grid_size, "grid_size", low=2, high=100_000)


@dataclass(frozen=True)
class HedgeConfig:
    """Parameters of Hedge (exponential weights)."""

    learning_rate: float = 1.0
    """``η`` (constant)."""
    grid_size: int = 2001
    """Actions per agent."""

    def __post_init__(self) -> None:
        check_scalar(self.learning_rate, "learning_rate", low=0.0, low_inclusive=False)
        check_int(self.grid_size, "grid_size", low=2, high=100_000)


_REGISTRY: dict[str, LearnerSpec] = {}


def register(spec: LearnerSpec) -> None:
    """Add ``spec``; its name must be new."""
    if not isinstance(spec, LearnerSpec):
        raise ValueError(f"spec must be a LearnerSpec, got {type(spec).__name__}")
    if spec.name in _REGISTRY:
        raise ValueError(f"a learner named {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec


def registry() -> dict[str, LearnerSpec]:
    """Every registered learner, keyed by name (a copy)."""
    return dict(_REGISTRY)


def spec(name: str) -> LearnerSpec:
    if name not in _REGISTRY:
        raise ValueError(f"unknown learner {name!r}; registered: {list(_REGISTRY)}")
    return _REGISTRY[name]


register(
    LearnerSpec(
        "gradient",
        "projected gradient play x ← Proj_X(x + β v̂) (Euclidean mirror descent)",
        "gradient",
        frozenset({"model"}),
        True,
        GradientPlayConfig,
        _gradient_play,
    )
)
register(
    LearnerSpec(
        "entropic",
        "exponentiated gradient with the paper's mixing step (entropic mirror descent, Algorithm 2)",
        "gradient",
        frozenset({"model", "simplex"}),
        True,
        EntropicConfig,
        _entropic,
    )
)
register(
    LearnerSpec(
        "best_response",
        "inertial exact best response x ← x + β (BR(x) − x)",
        "best_response",
        frozenset({"model", "best_response"}),
        False,
        BestResponseConfig,
        lambda game, config, seed: BestResponse(game.strategy_set, config.step_size),
    )
)
register(
    LearnerSpec(
        "logit",
        "inertial logit (quantal) choice over a grid of actions, from counterfactual payoffs",
        "payoffs",
        frozenset({"model", "payoffs"}),
        False,
        LogitConfig,
        lambda game, config, seed: LogitBestResponse(
            game.strategy_set, config.temperature, config.step_size, config.grid_size
        ),
    )
)
register(
    LearnerSpec(
        "hedge",
        "Hedge: exponential weights over a grid of actions (no-regret, payoff feedback only)",
        "payoffs",
        frozenset({"model", "payoffs"}),
        False,
        HedgeConfig,
        lambda game, config, seed: Hedge(game.strategy_set, config.learning_rate, config.grid_size),
    )
)


@dataclass(frozen=True)
class PolicyGradientConfig:
    """Parameters of the policy-gradient (REINFORCE) followers of episodic games."""

    learning_rate: float = 0.1
    """``lr`` of each agent's gradient-ascent step (one per batch of episodes)."""
    hidden: tuple[int, ...] = ()
    """Hidden tanh layers of each policy (``()``: linear in the observation)."""
    entropy_coef: float = 0.0
    """Weight of the policy entropy in each agent's objective."""
    discount: float = 1.0
    """``γ`` of the returns-to-go."""

    def __post_init__(self) -> None:
        check_scalar(self.learning_rate, "learning_rate", low=0.0, low_inclusive=False)
        if not isinstance(self.hidden, (tuple, list)):
            raise ValueError(f"hidden must be a list of layer widths, got {self.hidden!r}")
        object.__setattr__(
            self, "hidden", tuple(check_int(width, "hidden", low=1, high=4096) for width in self.hidden)
        )
        check_scalar(self.entropy_coef, "entropy_coef", low=0.0)
        check_scalar(self.discount, "discount", low=0.0, high=1.0, low_inclusive=False)


def _policy_gradient(task, config: PolicyGradientConfig, seed: int):
    from agents.policy_gradient import PolicyGradientLearners

    return PolicyGradientLearners(
        task,
        config.learning_rate,
        hidden=config.hidden,
        entropy_coef=config.entropy_coef,
        discount=config.discount,
        seed=seed,
    )


register(
    LearnerSpec(
        "policy_gradient",
        "independent softmax REINFORCE learners, one step per batch of episodes (differentiable in torch)",
        "rollouts",
        frozenset({"episodic"}),
        False,
        PolicyGradientConfig,
        _policy_gradient,
    )
)
