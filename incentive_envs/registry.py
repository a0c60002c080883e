"""The registry of every environment of the suite: one source of truth for the CLI, the
experiment engine, the sweeps, the scripts and the tests.

Each entry (:class:`EnvSpec`) names the env, documents its parameters (a frozen dataclass
with a docstring per field), builds the env and the game's model from them, and declares
the game's *capabilities*, which decide which learners and planners apply:

=================  ==========================================================================
capability         meaning
=================  ==========================================================================
``model``          an :class:`~incentive_envs.core.IncentiveGame`: pseudo-gradient, Jacobian
                   products, social cost, exact equilibrium and social optimum
``box``            box strategy sets (projected gradient play applies)
``simplex``        simplex strategy sets (entropic mirror descent applies)
``linear_prices``  the incentive is a linear price on each agent's own action
                   (``∂v/∂θ = −I``) and a transfer for the planner (social gradient applies)
``best_response``  exact best responses
``payoffs``        counterfactual payoffs of one-dimensional agents (Hedge, logit choice)
``episodic``       a batched episodic task played by policy-gradient learners: the model is
                   an :class:`~incentive_envs.episodic.EpisodicTask`, or (games that have
                   both) the entry's ``task_factory`` builds one beside the model
``bonus``          (episodic tasks) the incentive is a non-negative bonus per agent added to
                   its environment reward, paid per step or per prosocial event
``tax_schedule``   the incentive is a bracketed schedule of marginal income-tax rates
                   ``θ ∈ [0, 1]^B`` whose revenue is rebated lump-sum, and the planner
                   maximises equality × productivity; the model (or the task's ``game``) is
                   a :class:`~incentive_envs.tax_economy.TaxEconomyGame`, which the tax
                   baselines (US federal, Saez) read
=================  ==========================================================================

Adding a game means writing its model and env and one :func:`register` call at the bottom
of this module; the conformance suite (:mod:`incentive_envs.testing`) and the project's
tests then check it without new test code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

from incentive_envs.aggregative.env import AggregativeConfig, AggregativeEnv, aggregative_game
from incentive_envs.cleanup.env import CleanupConfig, CleanupEnv
from incentive_envs.cleanup.game import CleanupTask
from incentive_envs.cournot.env import CournotConfig, CournotEnv, cournot_game
from incentive_envs.env import StageGameConfig
from incentive_envs.escape_room.env import EscapeRoomConfig, EscapeRoomEnv
from incentive_envs.escape_room.game import EscapeRoomTask
from incentive_envs.oscillators.env import OscillatorEnv, OscillatorsConfig, oscillator_game
from incentive_envs.routing.env import CongestionConfig, CongestionEnv, congestion_game
from incentive_envs.tax_economy.env import TaxEconomyConfig, TaxEconomyEnv, tax_economy_game, tax_economy_task
from incentive_envs.validation import build_config

CAPABILITIES = frozenset(
    {
        "model",
        "box",
        "simplex",
        "linear_prices",
        "best_response",
        "payoffs",
        "episodic",
        "bonus",
        "tax_schedule",
    }
)


@dataclass(frozen=True)
class EnvSpec:
    """One registered environment.

    Attributes
    ----------
    env_id : str
        The versioned id, e.g. ``"cournot_v0"``.
    game : str
        The short game name used by the CLI, e.g. ``"cournot"``.
    description : str
        One line.
    config : type
        Frozen dataclass of the env's parameters (a docstring per field).
    env_class : type
        The ``ParallelEnv`` class; ``env_class(**params, incentive=..., render_mode=...)``.
    game_factory : callable or None
        ``config -> model``: the game's model built from a config (``None`` for games
        without one).
    size_field : str or None
        The config field that sets the number of agents (the CLI's ``--n``); ``None`` where
        the agents are fixed by other parameters (a road network's OD pairs).
    capabilities : frozenset of str
        See the module docstring.
    task_factory : callable or None
        ``config -> EpisodicTask`` for games whose model also comes as an episodic task (the
        tax economy): what policy-gradient learners play (:meth:`make_task`).
    """

    env_id: str
    game: str
    description: str
    config: type
    env_class: type
    game_factory: Callable | None
    size_field: str | None
    capabilities: frozenset[str]
    task_factory: Callable | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.capabilities) - CAPABILITIES)
        if unknown:
            raise ValueError(f"capabilities {unknown} of {self.env_id} are not among {sorted(CAPABILITIES)}")
        if self.size_field is not None and self.size_field not in {
            field.name for field in fields(self.config)
        }:
            raise ValueError(f"size_field {self.size_field!r} is not a field of {self.config.__name__}")

    def make_config(self, **params):
        """The validated config; unknown parameters raise ``ValueError`` listing the known ones."""
        return build_config(self.config, params, self.env_id)

    def make_env(self, *, incentive=None, render_mode: str | None = None, **params):
        """The parallel env with ``params`` (fields of :attr:`config`)."""
        return self.env_class(incentive=incentive, render_mode=render_mode, **params)

    def make_game(self, **params):
        """The game's model with ``params`` (fields of :attr:`config`)."""
        if self.game_factory is None:
            raise ValueError(f"{self.env_id} has no game model")
        return self.game_factory(self.make_config(**params))

    def make_task(self, **params):
        """The episodic task that policy-gradient learners play: the game's model itself on
        episodic-only games, else the ``task_factory``'s task of ``params``."""
        if self.task_factory is not None:
            return self.task_factory(self.make_config(**params))
        if "episodic" not in self.capabilities:
            raise ValueError(f"{self.env_id} has no episodic task")
        return self.make_game(**params)

    def parameters(self) -> dict[str, dict]:
        """Every parameter's type, default and description (from the config's field docstrings)."""
        return config_parameters(self.config)

    @property
    def env_only_parameters(self) -> frozenset[str]:
        """Parameters of the env adapter only (rounds per episode, feedback in ``infos``): the
        experiment engine plays the model directly and refuses them."""
        if issubclass(self.config, StageGameConfig):
            return frozenset(field.name for field in fields(StageGameConfig))
        return frozenset()

    def model_parameters(self) -> dict[str, dict]:
        """:meth:`parameters` without the env-only ones (what the engine's runs accept)."""
        return {
            name: info for name, info in self.parameters().items() if name not in self.env_only_parameters
        }


def config_parameters(config_class) -> dict[str, dict]:
    """``{field: {"type", "default", "description"}}`` of a config dataclass, descriptions read
    from the attribute docstrings in its source (the CleanRL/``simple-parsing`` convention)."""
    import ast
    import inspect
    import textwrap

    descriptions: dict[str, str] = {}
    for klass in reversed(config_class.__mro__):
        if not hasattr(klass, "__dataclass_fields__"):
            continue
        tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        body = tree.body[0].body
        for statement, following in zip(body, body[1:]):
            if (
                isinstance(statement, ast.AnnAssign)
                and isinstance(statement.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                descriptions[statement.target.id] = " ".join(following.value.value.split())
    return {
        field.name: {
            "type": field.type
            if isinstance(field.type, str)
            else getattr(field.type, "__name__", str(field.type)),
            "default": field.default,
            "description": descriptions.get(field.name, ""),
        }
        for field in fields(config_class)
        if field.init
    }


_REGISTRY: dict[str, EnvSpec] = {}


def register(spec: EnvSpec) -> None:
    """Add ``spec``; its id and game name must be new."""
    if not isinstance(spec, EnvSpec):
        raise ValueError(f"spec must be an EnvSpec, got {type(spec).__name__}")
    taken = {key for existing in _REGISTRY.values() for key in (existing.env_id, existing.game)}
    if spec.env_id in taken or spec.game in taken:
        raise ValueError(f"an env named {spec.env_id!r} / {spec.game!r} is already registered")
    _REGISTRY[spec.env_id] = spec


def registry() -> dict[str, EnvSpec]:
    """Every registered env, keyed by id, in registration order (a copy)."""
    return dict(_REGISTRY)


def spec(name: str) -> EnvSpec:
    """The entry of an env id (``"cournot_v0"``) or game name (``"cournot"``)."""
    for entry in _REGISTRY.values():
        if name in (entry.env_id, entry.game):
            return entry
    known = [entry.env_id for entry in _REGISTRY.values()] + [entry.game for entry in _REGISTRY.values()]
    raise ValueError(f"unknown env {name!r}; registered: {known}")


def make(env_id: str, *, incentive=None, render_mode: str | None = None, **params):
    """Build a registered env: ``make("cournot_v0", n_firms=10, k=1.0)``.

    Parameters
    ----------
    env_id : str
        An env id or game name of :func:`registry`.
    incentive : optional
        The initial incentive.
    render_mode : {None, "ansi", "human"}
    **params
        Fields of the env's config dataclass (``registry()[env_id].config``).
    """
    return spec(env_id).make_env(incentive=incentive, render_mode=render_mode, **params)


register(
    EnvSpec(
        env_id="cournot_v0",
        game="cournot",
        description="Cournot oligopoly with a per-firm emission tax (Liu et al. 2022, Example 3.1 and §7)",
        config=CournotConfig,
        env_class=CournotEnv,
        game_factory=cournot_game,
        size_field="n_firms",
        capabilities=frozenset({"model", "box", "linear_prices", "best_response", "payoffs"}),
    )
)
register(
    EnvSpec(
        env_id="aggregative_v0",
        game="aggregative",
        description="Aggregative game with mean-action congestion and per-agent linear prices",
        config=AggregativeConfig,
        env_class=AggregativeEnv,
        game_factory=aggregative_game,
        size_field="n_agents",
        capabilities=frozenset({"model", "box", "linear_prices", "best_response", "payoffs"}),
    )
)
register(
    EnvSpec(
        env_id="oscillators_v0",
        game="oscillators",
        description="Coupled oscillators with a synchronisation externality and linear prices on phases",
        config=OscillatorsConfig,
        env_class=OscillatorEnv,
        game_factory=oscillator_game,
        size_field="n_agents",
        capabilities=frozenset({"model", "box", "linear_prices", "best_response", "payoffs"}),
    )
)
register(
    EnvSpec(
        env_id="congestion_v0",
        game="congestion",
        description="Nonatomic route choice with logit travellers and planner-set link tolls (Liu et al. 2022, §7)",
        config=CongestionConfig,
        env_class=CongestionEnv,
        game_factory=congestion_game,
        size_field=None,
        capabilities=frozenset({"model", "simplex"}),
    )
)
register(
    EnvSpec(
        env_id="escape_room_v0",
        game="escape_room",
        description="Escape Room ER(N, M): a lever must be pulled for others to exit (Yang et al. 2021)",
        config=EscapeRoomConfig,
        env_class=EscapeRoomEnv,
        game_factory=lambda config: EscapeRoomTask(config.n_agents, config.threshold, config.max_cycles),
        size_field="n_agents",
        capabilities=frozenset({"episodic", "bonus"}),
    )
)
register(
    EnvSpec(
        env_id="cleanup_v0",
        game="cleanup",
        description="Cleanup: clean a polluted river so that an orchard regrows (Hughes et al. 2018; Yang et al. 2020)",
        config=CleanupConfig,
        env_class=CleanupEnv,
        game_factory=CleanupTask,
        size_field="n_agents",
        capabilities=frozenset({"episodic", "bonus"}),
    )
)
register(
    EnvSpec(
        env_id="tax_economy_v0",
        game="tax_economy",
        description="Workers choose labour under a planner-set 7-bracket income tax with a lump-sum rebate "
        "(Zheng et al. 2022; Yang et al. 2021)",
        config=TaxEconomyConfig,
        env_class=TaxEconomyEnv,
        game_factory=tax_economy_game,
        size_field="n_workers",
        capabilities=frozenset({"model", "box", "best_response", "payoffs", "tax_schedule", "episodic"}),
        task_factory=tax_economy_task,
    )
)
