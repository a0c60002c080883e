"""The registry of planners and the rule that says which game × learner × planner
combinations are valid: one source of truth for the CLI, the engine, the sweeps and the tests.

Each entry (:class:`PlannerSpec`) names a planner, states its information structure,
documents its parameters (a frozen dataclass with a docstring per field), builds it for a
game and the followers' learner, and declares what it needs from the game (capabilities,
see :mod:`incentive_envs.registry`) and from the learner.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from agents.learners import EuclideanMirrorDescent, jacobian_norm
from agents.policy_gradient import CollectiveReward, FixedBonus
from agents.registry import LearnerSpec
from agents.registry import registry as learner_registry
from agents.schedules import PowerSchedule
from incentive_envs.core import IncentiveGame
from incentive_envs.registry import CAPABILITIES, EnvSpec, config_parameters
from incentive_envs.registry import registry as env_registry
from incentive_envs.tax_economy.game import free_market_rates, saez_rates, us_federal_rates
from incentive_envs.validation import build_config, check_bool, check_choice, check_positive_int, check_scalar
from planners.base import Planner
from planners.baselines import (
    MAX_PROBE_STEPS,
    FixedIncentivePlanner,
    NoIncentivePlanner,
    OraclePlanner,
    ZerothOrderPlanner,
)
from planners.double_loop import MIN_TOLERANCE, DoubleLoopPlanner
from planners.meta_gradient import PAY_PER, RESPONSES
from planners.single_loop import SingleLoopPlanner
from planners.social_gradient import SocialGradientPlanner

LEARNER_REQUIREMENTS = ("any", "differentiable", "rollouts")
"""What a planner needs of the followers' learner: nothing, a differentiable fixed-point map
(unrolled differentiation), or policy-gradient learners playing episodes."""


@dataclass(frozen=True)
class PlannerSpec:
    """One registered planner.

    Attributes
    ----------
    name : str
    description : str
        One line.
    information : str
        Its information structure: what it observes and which parts of the model it uses.
    requires : frozenset of str
        Game capabilities it needs.
    learner_requirement : {"any", "differentiable", "rollouts"}
    config : type
        Frozen dataclass of its parameters.
    factory : callable
        ``(game, learner, config, seed) -> planner``.
    """

    name: str
    description: str
    information: str
    requires: frozenset[str]
    learner_requirement: str
    config: type
    factory: Callable

    def __post_init__(self) -> None:
        unknown = sorted(set(self.requires) - CAPABILITIES)
        if unknown:
            raise ValueError(f"requirements {unknown} of planner {self.name} are not capabilities")
        if self.learner_requirement not in LEARNER_REQUIREMENTS:
            raise ValueError(f"learner_requirement must be one of {LEARNER_REQUIREMENTS}")

    def make_config(self, **params):
        return build_config(self.config, params, f"planner {self.name}")

    def make(self, game, learner, seed: int = 0, **params) -> Planner:
        """The planner for ``game`` and the followers' ``learner`` with ``params``."""
        return self.factory(game, learner, self.make_config(**params), seed)

    def parameters(self) -> dict[str, dict]:
        return config_parameters(self.config)

    def accepts(self, learner: LearnerSpec) -> bool:
        """Whether it can steer followers that learn with ``learner``. Planners that need the
        game's model steer followers playing the model, never policy-gradient learners playing
        episodes (on a game that offers both, e.g. the tax economy)."""
        if "model" in self.requires and learner.feedback == "rollouts":
            return False
        if self.learner_requirement == "differentiable":
            return learner.differentiable
        if self.learner_requirement == "rollouts":
            return learner.feedback == "rollouts"
        return True


def follower_model(game, learner, model_step: float | None):
    """The map an implicit-gradient planner differentiates: the followers' own learner when it
    is differentiable, else projected gradient play with step ``model_step`` (default
    ``1/‖∂v/∂x‖₂`` at the start) as the planner's model of the followers."""
    if learner.differentiable:
        return learner
    if model_step is None:
        start = game.strategy_set.uniform_point()
        model_step = 1.0 / jacobian_norm(
            game, start, game.incentive_set.project(np.zeros(game.incentive_set.dim))
        )
    return EuclideanMirrorDescent(game.strategy_set, model_step)


@dataclass(frozen=True)
class SingleLoopConfig:
    """Parameters of the implicit-gradient single loop."""

    step_size: float = 1.0
    """``α`` of ``α_k = α/(k+1)^{step_power}``."""
    step_power: float = 0.0
    """0: constant (Table 1); Theorem 5.4 uses 1, Theorem 5.5 uses 1/2."""
    model_step: float | None = None
    """Step of the projected-gradient map used as the followers' model when their learner has
    no differentiable map; ``None``: ``1/‖∂v/∂x‖₂`` at the start."""

    def __post_init__(self) -> None:
        check_scalar(self.step_size, "step_size", low=0.0, low_inclusive=False)
        check_scalar(self.step_power, "step_power", low=0.0)
        if self.model_step is not None:
            check_scalar(self.model_step, "model_step", low=0.0, low_inclusive=False)


def _single_loop(game, learner, config: SingleLoopConfig, seed: int) -> SingleLoopPlanner:
    return SingleLoopPlanner(
        game,
        learner,
        PowerSchedule(config.step_size, config.step_power),
        follower_model=follower_model(game, learner, config.model_step)
        if not learner.differentiable
        else None,
    )


@dataclass(frozen=True)
class DoubleLoopConfig:
    """Parameters of the double loops (Table 1's ID and AD)."""

    step_size: float = 1.0
    """``α`` of the outer projected gradient step (constant)."""
    tolerance: float = 1e-6
    """Inner loops stop when ``‖Δx‖∞ <= tolerance``."""
    max_inner: int = 100_000
    """Cap on inner iterations per outer step."""
    model_step: float | None = None
    """As for the single loop (ID only)."""

    def __post_init__(self) -> None:
        check_scalar(self.step_size, "step_size", low=0.0, low_inclusive=False)
        check_scalar(self.tolerance, "tolerance", low=MIN_TOLERANCE)
        check_positive_int(self.max_inner, "max_inner", 10_000_000)
        if self.model_step is not None:
            check_scalar(self.model_step, "model_step", low=0.0, low_inclusive=False)


def _double_loop(differentiation: str):
    def factory(game, learner, config: DoubleLoopConfig, seed: int) -> DoubleLoopPlanner:
        model = None
        if differentiation == "implicit" and not learner.differentiable:
            model = follower_model(game, learner, config.model_step)
        return DoubleLoopPlanner(
            game,
            learner,
            config.step_size,
            differentiation=differentiation,
            tolerance=config.tolerance,
            max_inner=config.max_inner,
            follower_model=model,
        )

    return factory


@dataclass(frozen=True)
class SocialGradientConfig:
    """Parameters of the social-gradient planner."""

    step_size: float = 0.02
    """``α`` (constant); small against the followers' speed (two timescales)."""

    def __post_init__(self) -> None:
        check_scalar(self.step_size, "step_size", low=0.0, low_inclusive=False)


@dataclass(frozen=True)
class ZerothOrderConfig:
    """Parameters of the SPSA planner."""

    gain: float = 0.1
    """``a`` of ``a_m = a/(m + 1 + A)^0.602``."""
    perturbation: float = 0.5
    """``c`` of ``c_m = c/(m + 1)^0.101``."""
    stability: float = 10.0
    """``A``."""
    probe_steps: int = 10
    """Follower iterations per probe."""

    def __post_init__(self) -> None:
        check_scalar(self.gain, "gain", low=0.0, low_inclusive=False)
        check_scalar(self.perturbation, "perturbation", low=0.0, low_inclusive=False)
        check_scalar(self.stability, "stability", low=0.0)
        check_positive_int(self.probe_steps, "probe_steps", MAX_PROBE_STEPS)


@dataclass(frozen=True)
class FixedConfig:
    """Parameters of the fixed-incentive planner."""

    value: float = 0.0
    """Every coordinate of the posted incentive (must lie inside Θ)."""

    def __post_init__(self) -> None:
        check_scalar(self.value, "value")


@dataclass(frozen=True)
class NoParameters:
    """No parameters."""


_REGISTRY: dict[str, PlannerSpec] = {}


def register(spec: PlannerSpec) -> None:
    """Add ``spec``; its name must be new."""
    if not isinstance(spec, PlannerSpec):
        raise ValueError(f"spec must be a PlannerSpec, got {type(spec).__name__}")
    if spec.name in _REGISTRY:
        raise ValueError(f"a planner named {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec


def registry() -> dict[str, PlannerSpec]:
    """Every registered planner, keyed by name (a copy)."""
    return dict(_REGISTRY)


def spec(name: str) -> PlannerSpec:
    if name not in _REGISTRY:
        raise ValueError(f"unknown planner {name!r}; registered: {list(_REGISTRY)}")
    return _REGISTRY[name]


def valid(game: EnvSpec, learner: LearnerSpec, planner: PlannerSpec) -> bool:
    """Whether the combination can run: the game has every capability the learner and the
    planner require, and the planner accepts the learner."""
    needed = learner.requires | planner.requires
    return needed <= game.capabilities and planner.accepts(learner)


def combinations() -> list[tuple[str, str, str]]:
    """Every valid ``(game, learner, planner)`` of the three registries."""
    return [
        (game.game, learner.name, planner.name)
        for game in env_registry().values()
        for learner in learner_registry().values()
        for planner in _REGISTRY.values()
        if valid(game, learner, planner)
    ]


register(
    PlannerSpec(
        "single_loop",
        "implicit-gradient single loop (Liu et al. 2022, Algorithms 1-2): one learner step, one incentive step",
        SingleLoopPlanner.information,
        frozenset({"model"}),
        "any",
        SingleLoopConfig,
        _single_loop,
    )
)
register(
    PlannerSpec(
        "double_loop_id",
        "double loop with implicit differentiation at the solved equilibrium (Table 1's ID)",
        DoubleLoopPlanner.information,
        frozenset({"model"}),
        "any",
        DoubleLoopConfig,
        _double_loop("implicit"),
    )
)
register(
    PlannerSpec(
        "double_loop_ad",
        "double loop with torch autograd through the unrolled learner (Table 1's AD)",
        DoubleLoopPlanner.information,
        frozenset({"model"}),
        "differentiable",
        DoubleLoopConfig,
        _double_loop("unrolled"),
    )
)
register(
    PlannerSpec(
        "social_gradient",
        "hypergradient-free linear prices θ ← Proj(θ + α ∇_xΦ(x)) (social-gradient method)",
        SocialGradientPlanner.information,
        frozenset({"model", "linear_prices"}),
        "any",
        SocialGradientConfig,
        lambda game, learner, config, seed: SocialGradientPlanner(game, config.step_size),
    )
)
register(
    PlannerSpec(
        "zeroth_order",
        "two-point SPSA on the observed social cost",
        ZerothOrderPlanner.information,
        frozenset({"model"}),
        "any",
        ZerothOrderConfig,
        lambda game, learner, config, seed: ZerothOrderPlanner(
            game,
            seed,
            gain=config.gain,
            perturbation=config.perturbation,
            stability=config.stability,
            probe_steps=config.probe_steps,
        ),
    )
)


@dataclass(frozen=True)
class NoIncentiveConfig:
    """Parameters of the no-incentive baseline."""

    batch_size: int = 32
    """Episodic games: episodes per learning step of the followers (ignored by model games)."""

    def __post_init__(self) -> None:
        check_positive_int(self.batch_size, "batch_size", 100_000)


def _no_incentive(game, learner, config: NoIncentiveConfig, seed: int):
    if isinstance(game, IncentiveGame):
        return NoIncentivePlanner(game)
    return FixedBonus(learner, 0.0, batch_size=config.batch_size, seed=seed)


register(
    PlannerSpec(
        "none",
        "no incentive (Proj_Θ(0); on episodic games selfish learning)",
        NoIncentivePlanner.information,
        frozenset(),
        "any",
        NoIncentiveConfig,
        _no_incentive,
    )
)
register(
    PlannerSpec(
        "fixed",
        "a constant incentive (every coordinate = value) forever",
        FixedIncentivePlanner.information,
        frozenset({"model"}),
        "any",
        FixedConfig,
        lambda game, learner, config, seed: FixedIncentivePlanner(
            game, game.validate_incentive(np.full(game.incentive_set.dim, config.value), "value")
        ),
    )
)
register(
    PlannerSpec(
        "oracle",
        "the optimal incentive from the start (closed-form first best, else L-BFGS-B on f*)",
        OraclePlanner.information,
        frozenset({"model"}),
        "any",
        NoParameters,
        lambda game, learner, config, seed: OraclePlanner(game),
    )
)


def _schedule_planner(rates):
    """The factory of a planner that posts ``rates(game)`` forever."""

    def factory(game, learner, config, seed) -> FixedIncentivePlanner:
        return FixedIncentivePlanner(game, rates(game))

    return factory


for _name, _description, _rates in (
    ("free_market", "tax economy: no tax (θ = 0)", free_market_rates),
    ("us_federal", "tax economy: the 2018 US federal single-filer rates 10-37%", us_federal_rates),
    (
        "saez",
        "tax economy: Saez (2001) optimal rates from the free-market incomes and the utility's elasticities",
        saez_rates,
    ),
):
    register(
        PlannerSpec(
            _name,
            _description,
            "observes nothing; the schedule is computed once from the model "
            "(Saez: its free-market income distribution and labour elasticities)",
            frozenset({"model", "tax_schedule"}),
            "any",
            NoParameters,
            _schedule_planner(_rates),
        )
    )


@dataclass(frozen=True)
class FixedBonusConfig:
    """Parameters of the fixed bonus per prosocial event (lever pull, waste cell cleaned)."""

    bonus: float = 0.1
    """Bonus per prosocial event paid to every agent."""
    batch_size: int = 32
    """Episodes per learning step of the followers."""

    def __post_init__(self) -> None:
        check_scalar(self.bonus, "bonus", low=0.0)
        check_positive_int(self.batch_size, "batch_size", 100_000)


@dataclass(frozen=True)
class CollectiveRewardConfig:
    """Parameters of the collective-reward reference."""

    batch_size: int = 32
    """Episodes per learning step of the followers."""

    def __post_init__(self) -> None:
        check_positive_int(self.batch_size, "batch_size", 100_000)


@dataclass(frozen=True)
class MetaGradientConfig:
    """Parameters of the meta-gradient incentive designer."""

    batch_size: int = 32
    """Episodes per iteration (training and validation batches)."""
    designer_lr: float = 0.001
    """Adam's learning rate on the incentive function."""
    max_incentive: float = 1.0
    """``R_max``: the largest bonus per agent per step (or per event)."""
    pay_per: str = "step"
    """``"step"`` (a bonus every step) or ``"event"`` (a price per prosocial event)."""
    cost_weight: float = 0.01
    """``κ``: the price of a unit of incentive in the designer's objective."""
    constant_start: bool = True
    """Start from a constant incentive."""
    response: str = "one_step"
    """The followers' response the designer differentiates: ``"one_step"`` (their next
    learning step) or ``"fixed_point"`` (their soft-best-response equilibrium; tax economy)."""

    def __post_init__(self) -> None:
        check_positive_int(self.batch_size, "batch_size", 100_000)
        check_scalar(self.designer_lr, "designer_lr", low=0.0, low_inclusive=False)
        check_scalar(self.max_incentive, "max_incentive", low=0.0, low_inclusive=False)
        check_choice(self.pay_per, "pay_per", PAY_PER)
        check_scalar(self.cost_weight, "cost_weight", low=0.0)
        check_bool(self.constant_start, "constant_start")
        check_choice(self.response, "response", RESPONSES)


@dataclass(frozen=True)
class RLPlannerConfig:
    """Parameters of the dual-RL (PPO) planner."""

    batch_size: int = 32
    """Follower episodes per planner step."""
    bonus_levels: tuple[float, ...] = (0.0, 0.1, 0.3, 1.0)
    """The bonus menu of every agent (per prosocial event)."""
    cost_weight: float = 0.01
    """``κ``: the price of a unit of bonus in the planner's reward."""

    def __post_init__(self) -> None:
        check_positive_int(self.batch_size, "batch_size", 100_000)
        check_scalar(self.cost_weight, "cost_weight", low=0.0)


def _meta_gradient(task, learners, config: MetaGradientConfig, seed: int):
    from planners.meta_gradient import MetaGradientDesigner

    return MetaGradientDesigner(
        learners,
        batch_size=config.batch_size,
        designer_lr=config.designer_lr,
        max_incentive=config.max_incentive,
        pay_per=config.pay_per,
        cost_weight=config.cost_weight,
        constant_start=config.constant_start,
        response=config.response,
        seed=seed,
    )


def _rl_planner(task, learners, config: RLPlannerConfig, seed: int):
    from planners.rl_planner import RLPlanner

    return RLPlanner(
        learners,
        batch_size=config.batch_size,
        bonus_levels=config.bonus_levels,
        cost_weight=config.cost_weight,
        seed=seed,
    )


register(
    PlannerSpec(
        "fixed_bonus",
        "a constant bonus per prosocial event (lever pull, waste cell cleaned)",
        "observes nothing; the bonus is fixed in advance",
        frozenset({"episodic", "bonus"}),
        "rollouts",
        FixedBonusConfig,
        lambda task, learners, config, seed: FixedBonus(
            learners, config.bonus, batch_size=config.batch_size, seed=seed
        ),
    )
)
# "bonus" selects the episodic tasks whose planner objective is the collective env return (not
# the tax economy); the reference's transfers are not bonuses: they sum to zero and can be negative.
register(
    PlannerSpec(
        "collective_reward",
        "reference, not a designer: the followers share the collective env reward equally "
        "(budget-balanced transfers r̄ − r_i), so each maximises the collective return",
        "observes every agent's env reward at every step",
        frozenset({"episodic", "bonus"}),
        "rollouts",
        CollectiveRewardConfig,
        lambda task, learners, config, seed: CollectiveReward(
            learners, batch_size=config.batch_size, seed=seed
        ),
    )
)
register(
    PlannerSpec(
        "meta_gradient",
        "meta-gradient incentive designer: online cross-validation through the followers' update "
        "(Yang et al. 2021); a bonus function, or the rates of a tax schedule",
        "observes played episodes; knows the followers' learning rule, not the game's rules",
        frozenset({"episodic"}),
        "rollouts",
        MetaGradientConfig,
        _meta_gradient,
    )
)
register(
    PlannerSpec(
        "rl_planner",
        "dual RL: a PPO planner choosing each agent's bonus (or the tax rates) every iteration",
        "observes each batch's action frequencies and collective return; knows neither rules nor learning rule",
        frozenset({"episodic"}),
        "rollouts",
        RLPlannerConfig,
        _rl_planner,
    )
)
