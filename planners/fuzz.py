"""A fuzz harness for the validation policy (:mod:`incentive_envs.validation`): bad and
borderline inputs for every entry of the three registries, each outcome classified.

Every case calls one public entry point — an env's constructor, ``reset``, ``step``,
``step_arrays`` or ``set_incentive``; a game model's methods; a learner's constructor,
``step`` and ``load_state_dict``; a planner's constructor, ``update``, ``reset`` and
``load_state_dict``; :class:`~planners.experiment.ExperimentConfig` and
:func:`~planners.experiment.run_experiment` (including tampered checkpoints); the road
networks' cost functions and :func:`~incentive_envs.routing.tntp.read_tntp` on mutated files —
with one argument replaced, and sorts the outcome into one of :data:`OUTCOMES`:

=========================  ==================================================================
``clean_value_error``      a bad input raised ``ValueError`` naming the argument
``value_error_unnamed``    a bad input raised ``ValueError`` without naming it
``wrong_exception_type``   any other exception (``TypeError``, ``KeyError``, ``MemoryError``...)
``silent_accept``          a bad input was accepted with finite output
``silent_nan``             an accepted input (bad or valid) produced NaN or inf
``hang``                   the call outlived the time limit
``half_changed``           a refused call changed the object's state
``valid_rejected``         a valid input (or file) was refused
``valid_accepted``         a valid input was accepted with finite output
=========================  ==================================================================

Borderline inputs whose validity depends on the entry (a zero, a negative, ``1e308`` for a
parameter) may be refused by a ``ValueError`` or accepted, but an accepted one must give
finite results: constructors are followed by a short use of the object (a round of the env,
a learner step, a few iterations of a planner) whose output is checked.

Cases are built from the registries, so a new env, learner or planner is fuzzed without new
code here. :func:`run_cases` runs them (with a per-case time limit on ``SIGALRM``, so call it
from the main thread) and :func:`report` summarises; ``scripts/fuzz_report.py`` is the CLI.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import signal
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

from agents.registry import registry as learner_registry
from incentive_envs.registry import EnvSpec
from incentive_envs.registry import registry as env_registry
from incentive_envs.testing import identical
from planners.registry import registry as planner_registry
from planners.registry import valid

OUTCOMES = (
    "clean_value_error",
    "value_error_unnamed",
    "wrong_exception_type",
    "silent_accept",
    "silent_nan",
    "hang",
    "half_changed",
    "valid_rejected",
    "valid_accepted",
)
"""Every outcome, in the order of the report's table."""

CLEAN_OUTCOMES = frozenset({"clean_value_error", "valid_accepted"})
"""The outcomes the policy allows."""

INVALID, VALID, EITHER = "invalid", "valid", "either"
"""What a case's input is: refused by policy, accepted by policy, or either (entry-dependent)."""


class Case(NamedTuple):
    """One input to one entry point.

    Attributes
    ----------
    target : str
        The entry point, e.g. ``"cournot_v0.step"``.
    argument : str
        The argument (or file) the error must name; ``"|"`` separates accepted alternatives.
    value : str
        A short description of the input.
    call : callable
        ``() -> output``: makes the call (and, for constructors, a short use of the result);
        the output is checked for NaN and inf.
    expect : {"invalid", "valid", "either"}
    state : callable, optional
        ``() -> snapshot`` of the state a refused call must leave unchanged.
    setup : callable, optional
        Run before the snapshot and the call (e.g. the followers' move a planner's update
        follows).
    """

    target: str
    argument: str
    value: str
    call: Callable[[], object]
    expect: str
    state: Callable[[], object] | None = None
    setup: Callable[[], object] | None = None


class Outcome(NamedTuple):
    """The classified result of one case: its outcome and a one-line detail."""

    case: Case
    outcome: str
    detail: str


class _Timeout(BaseException):
    """Raised by the alarm: a ``BaseException`` so that no ``except Exception`` swallows it."""


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    def alarm(signum, frame):
        raise _Timeout

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _finite(value, depth: int = 0) -> bool:
    """Whether every number in ``value`` (arrays, numbers, tensors, containers) is finite."""
    if depth > 6 or value is None or isinstance(value, (str, bytes, bool, np.bool_)):
        return True
    if isinstance(value, np.ndarray):
        return value.dtype.kind not in "fc" or bool(np.all(np.isfinite(value)))
    if isinstance(value, (float, np.floating, complex, np.complexfloating)):
        return bool(np.isfinite(value))
    if isinstance(value, dict):
        return all(_finite(item, depth + 1) for item in value.values())
    if isinstance(value, (list, tuple)):
        return all(_finite(item, depth + 1) for item in value)
    if type(value).__module__.startswith("torch") and hasattr(value, "isfinite"):
        return bool(value.detach().isfinite().all()) if value.is_floating_point() else True
    return True


def snapshot(obj) -> dict:
    """The attributes of ``obj`` (arrays and tensors copied, generators by their state,
    containers of plain values deep-copied, other objects by identity), plus its
    ``state_dict()`` if it has one: what a refused call must leave unchanged."""
    import copy

    def freeze(value):
        if isinstance(value, np.ndarray):
            return ("array", value.copy())
        if isinstance(value, np.random.Generator):
            return ("generator", json.dumps(value.bit_generator.state, default=str))
        if type(value).__module__.startswith("torch") and hasattr(value, "clone"):
            return ("tensor", value.detach().clone())
        if isinstance(value, (dict, list, tuple, int, float, str, type(None))):
            with contextlib.suppress(Exception):
                return ("copy", copy.deepcopy(value))
        return ("identity", id(value))

    frozen_state = {name: freeze(value) for name, value in vars(obj).items()}
    if hasattr(obj, "state_dict"):
        with contextlib.suppress(Exception):
            frozen_state["state_dict()"] = freeze(obj.state_dict())
    return frozen_state


def _names_argument(message: str, argument: str) -> bool:
    return any(name in message for name in argument.split("|"))


def classify(case: Case, timeout: float = 20.0) -> Outcome:
    """Run ``case`` under a time limit and classify its outcome (see the module docstring)."""
    before = None
    try:
        with warnings.catch_warnings(), _time_limit(timeout):
            warnings.simplefilter("ignore")
            if case.setup is not None:
                case.setup()
            before = case.state() if case.state is not None else None
            output = case.call()
    except _Timeout:
        return Outcome(case, "hang", f"no answer within {timeout:g} s")
    except Exception as error:  # noqa: BLE001 - classifying every exception is the point
        detail = f"{type(error).__name__}: {error}"[:300]
        if before is not None and not identical(before, case.state()):
            return Outcome(case, "half_changed", detail)
        if case.expect == VALID:
            return Outcome(case, "valid_rejected", detail)
        if not isinstance(error, ValueError):
            return Outcome(case, "wrong_exception_type", detail)
        if _names_argument(str(error), case.argument):
            return Outcome(case, "clean_value_error", detail)
        return Outcome(case, "value_error_unnamed", detail)
    if not _finite(output):
        return Outcome(case, "silent_nan", "the output holds NaN or inf")
    if case.expect == INVALID:
        return Outcome(case, "silent_accept", f"accepted; output {_short(output)}")
    return Outcome(case, "valid_accepted", "")


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def run_cases(
    cases: list[Case], timeout: float = 20.0, progress: Callable[[int, int], None] | None = None
) -> list[Outcome]:
    """Classify every case (in the main thread: the time limit uses ``SIGALRM``)."""
    outcomes = []
    for index, case in enumerate(cases):
        outcomes.append(classify(case, timeout))
        if progress is not None:
            progress(index + 1, len(cases))
    return outcomes


def report(outcomes: list[Outcome], examples_per_outcome: int = 25) -> dict:
    """``{"inputs", "counts", "by_target", "examples"}``: the count of every outcome, the
    counts per entry point, and up to ``examples_per_outcome`` examples of every outcome
    outside :data:`CLEAN_OUTCOMES`."""
    counts = Counter(outcome.outcome for outcome in outcomes)
    by_target: dict[str, Counter] = {}
    examples: dict[str, list] = {}
    for outcome in outcomes:
        family = outcome.case.target.split("[")[0]
        by_target.setdefault(family, Counter())[outcome.outcome] += 1
        if outcome.outcome not in CLEAN_OUTCOMES:
            bucket = examples.setdefault(outcome.outcome, [])
            if len(bucket) < examples_per_outcome:
                bucket.append(
                    {
                        "target": outcome.case.target,
                        "argument": outcome.case.argument,
                        "value": outcome.case.value,
                        "expect": outcome.case.expect,
                        "detail": outcome.detail,
                    }
                )
    return {
        "inputs": len(outcomes),
        "counts": {name: counts.get(name, 0) for name in OUTCOMES},
        "by_target": {target: dict(counter) for target, counter in sorted(by_target.items())},
        "examples": examples,
    }


def table(summary: dict) -> str:
    """The report's counts as a text table."""
    width = max(map(len, OUTCOMES))
    lines = [f"{'outcome':<{width}}  {'count':>7}", "-" * (width + 9)]
    lines += [f"{name:<{width}}  {summary['counts'][name]:>7d}" for name in OUTCOMES]
    lines.append(f"{'inputs':<{width}}  {summary['inputs']:>7d}")
    return "\n".join(lines)


# -- the inputs ---------------------------------------------------------------------------
class _Junk:
    """An arbitrary object with no numeric meaning."""

    def __repr__(self) -> str:
        return "<object>"


def array_inputs(good: np.ndarray, low=None, high=None) -> list[tuple[str, object, str]]:
    """``(description, value, expectation)`` of bad and borderline variants of the valid real
    array ``good`` whose entries must lie in ``[low, high]`` (arrays or floats, ``None``:
    unbounded)."""
    good = np.asarray(good, dtype=np.float64)
    flat = good.reshape(-1)
    inputs: list[tuple[str, object, str]] = [
        ("valid", good.copy(), VALID),
        ("valid list", good.tolist(), VALID),
        (
            "valid tuple" if good.ndim == 1 else "valid nested tuple",
            tuple(map(tuple, good)) if good.ndim == 2 else tuple(good.tolist()),
            VALID,
        ),
        (
            "float32 copy",
            good.astype(np.float32),
            EITHER if low is not None or high is not None else VALID,  # rounding may leave the set
        ),
        ("read-only copy", _read_only(good), VALID),
        ("None", None, INVALID),
        ("string '5'", "5", INVALID),
        ("array of strings", good.astype(str), INVALID),
        ("complex", good + 1j, INVALID),
        ("complex with zero imaginary part", good.astype(complex), INVALID),
        ("booleans", np.ones(good.shape, dtype=bool), INVALID),
        ("dict", {"value": 1.0}, INVALID),
        ("object", _Junk(), INVALID),
        ("empty", np.zeros(0), INVALID),
        ("column", good.reshape(-1, 1) if good.ndim == 1 else good[..., None], INVALID),
        ("row", good[None], INVALID),
        ("one extra entry", np.append(flat, flat[0]), INVALID),
        ("ragged list", [[1.0, 2.0], [3.0]], INVALID),
        ("object array", np.array([_Junk()] * flat.size, dtype=object).reshape(good.shape), INVALID),
    ]
    if flat.size > 1:
        inputs.append(("first entry only", flat[:1].copy(), INVALID))
        inputs.append(("scalar", float(flat[0]), INVALID))
        with_bool = flat.tolist()
        with_bool[-1] = True
        inputs.append(("list with a boolean", with_bool if good.ndim == 1 else None, INVALID))
        with_string = flat.astype(object)
        with_string[0] = "1.0"
        inputs.append(("object array with a numeric string", with_string.reshape(good.shape), INVALID))
    for label, bad in (("NaN", np.nan), ("inf", np.inf), ("-inf", -np.inf)):
        for where in {0, flat.size - 1}:
            value = flat.copy()
            value[where] = bad
            inputs.append((f"{label} at [{where}]", value.reshape(good.shape), INVALID))
    lows = None if low is None else np.broadcast_to(np.asarray(low, dtype=np.float64), good.shape).reshape(-1)
    highs = (
        None if high is None else np.broadcast_to(np.asarray(high, dtype=np.float64), good.shape).reshape(-1)
    )
    for side, bounds in (("lower", lows), ("upper", highs)):
        if bounds is None:
            continue
        sign = -1.0 if side == "lower" else 1.0
        finite = np.flatnonzero(np.isfinite(bounds))
        if finite.size == 0:
            continue
        index = int(finite[-1])
        at_bound = flat.copy()
        at_bound[index] = bounds[index]
        inputs.append((f"on the {side} bound at [{index}]", at_bound.reshape(good.shape), VALID))
        all_at = np.where(np.isfinite(bounds), bounds, flat)
        if lows is None or highs is None or side == "lower":
            inputs.append((f"every entry on its {side} bound", all_at.reshape(good.shape), VALID))
        for label, offset in (
            ("1e-6 relative", 1e-6 * max(1.0, abs(bounds[index]))),
            ("1 unit", 1.0),
            ("1e6", 1e6),
        ):
            outside = flat.copy()
            outside[index] = bounds[index] + sign * offset
            inputs.append(
                (f"{label} beyond the {side} bound at [{index}]", outside.reshape(good.shape), INVALID)
            )
    if low is None and high is None:
        for label, value in (
            ("1e308 everywhere", 1e308),
            ("-1e308 everywhere", -1e308),
            ("1e-300 everywhere", 1e-300),
        ):
            inputs.append((label, np.full(good.shape, value), EITHER))
    return [entry for entry in inputs if entry[1] is not None or entry[0] == "None"]


def _read_only(array: np.ndarray) -> np.ndarray:
    copy = array.copy()
    copy.setflags(write=False)
    return copy


def int_inputs(good: int, *, allow_none: bool = False) -> list[tuple[str, object, str]]:
    """Bad and borderline variants of a valid integer argument ``good``."""
    unsigned = [("NumPy uint32", np.uint32(good), VALID)] if 0 <= good < 2**32 else []
    return unsigned + [
        ("valid", good, VALID),
        ("NumPy int64", np.int64(good), VALID),
        ("None", None, VALID if allow_none else INVALID),
        ("1.5", 1.5, INVALID),
        ("integral float", float(good), INVALID),
        ("string", str(good), INVALID),
        ("True", True, INVALID),
        ("NaN", math.nan, INVALID),
        ("inf", math.inf, INVALID),
        ("10**30", 10**30, INVALID),
        ("-10**30", -(10**30), INVALID),
        ("2**64", 2**64, INVALID),
        ("list", [good], INVALID),
        ("0-d array", np.array(good), EITHER),
        ("complex", complex(good), INVALID),
        ("object", _Junk(), INVALID),
        ("-1", -1, EITHER),
        ("0", 0, EITHER),
    ]


def seed_inputs(*, allow_none: bool, allow_generator: bool) -> list[tuple[str, object, str]]:
    """Bad and valid seeds."""
    return [
        ("0", 0, VALID),
        ("NumPy int64 3", np.int64(3), VALID),
        ("NumPy uint32 7", np.uint32(7), VALID),
        ("2**32", 2**32, VALID),
        ("None", None, VALID if allow_none else INVALID),
        ("a Generator", np.random.default_rng(0), VALID if allow_generator else INVALID),
        ("-1", -1, INVALID),
        ("1.5", 1.5, INVALID),
        ("3.0", 3.0, INVALID),
        ("'3'", "3", INVALID),
        ("True", True, INVALID),
        ("NaN", math.nan, INVALID),
        ("2**64", 2**64, INVALID),
        ("10**30", 10**30, INVALID),
        ("[1]", [1], INVALID),
        ("object", _Junk(), INVALID),
    ]


def _scalar_inputs(default, optional: bool) -> list[tuple[str, object, str]]:
    base = 1.0 if default is None else float(default)
    return [
        ("default as NumPy float64", np.float64(base), EITHER if default is None else VALID),
        (
            "default as int",
            int(base) if float(base).is_integer() else base,
            EITHER if default is None else VALID,
        ),
        ("None", None, VALID if optional else INVALID),
        ("NaN", math.nan, INVALID),
        ("inf", math.inf, INVALID),
        ("-inf", -math.inf, INVALID),
        ("string '5'", "5", INVALID),
        ("complex", complex(base, 1.0), INVALID),
        ("complex with zero imaginary part", np.complex128(base), INVALID),
        ("True", True, INVALID),
        ("list", [base], INVALID),
        ("1-element array", np.array([base]), INVALID),
        ("object", _Junk(), INVALID),
        ("0", 0.0, EITHER),
        ("-1", -1.0, EITHER),
        ("1e308", 1e308, EITHER),
        ("-1e308", -1e308, EITHER),
        ("1e-300", 1e-300, EITHER),
        ("10**400 (int)", 10**400, INVALID),
    ]


def _field_inputs(field: dataclasses.Field) -> list[tuple[str, object, str]]:
    """Bad and borderline values of a config field, from its type and default."""
    kind = str(field.type)
    default = field.default
    optional = "None" in kind
    if kind.startswith("bool"):
        return [
            ("NumPy bool", np.bool_(default), VALID),
            ("'no'", "no", INVALID),
            ("0", 0, INVALID),
            ("1", 1, INVALID),
            ("None", None, INVALID),
            ("1.0", 1.0, INVALID),
        ]
    if kind.startswith("tuple[float, float]"):
        low, high = (0.0, 1.0) if default is None else default
        return [
            ("NumPy pair", np.array([low, high]), VALID),
            ("list pair", [low, high], VALID),
            ("None", None, VALID if optional else INVALID),
            ("reversed", (high + 1.0, low), INVALID),
            ("NaN", (math.nan, high), INVALID),
            ("inf", (low, math.inf), INVALID),
            ("one number", (low,), INVALID),
            ("three numbers", (low, high, high), INVALID),
            ("strings", ("a", "b"), INVALID),
            ("numeric strings", ("0", "1"), INVALID),
            ("a string", "ab", INVALID),
            ("booleans", (False, True), INVALID),
            ("complex", (complex(low, 1), high), INVALID),
            ("scalar", 1.0, INVALID),
            ("equal ends", (high, high), EITHER),
            ("huge", (-1e308, 1e308), EITHER),
        ]
    if kind.startswith("tuple[str"):
        return [
            ("list", list(default), VALID),
            ("empty", (), EITHER),
            ("unknown entry", ("bogus",), INVALID),
            ("a bare string", default[0] if default else "x", INVALID),
            ("duplicated", tuple(default) * 2 if default else ("x", "x"), INVALID),
            ("a number", (1,), INVALID),
            ("None", None, INVALID),
        ]
    if kind.startswith("tuple[int"):
        return [
            ("empty", (), EITHER),
            ("None", None, VALID if optional else INVALID),
            ("(0,)", (0,), EITHER),
            ("(-1,)", (-1,), INVALID),
            ("(1.5,)", (1.5,), INVALID),
            ("('1',)", ("1",), INVALID),
            ("(True,)", (True,), INVALID),
            ("(10**30,)", (10**30,), INVALID),
            ("a string", "12", INVALID),
            ("an int", 3, INVALID),
            ("(1, 1)", (1, 1), EITHER),
        ]
    if kind.startswith("tuple[float"):
        return [
            ("list", list(default), VALID),
            ("(NaN,)", (math.nan,), INVALID),
            ("(inf,)", (math.inf,), INVALID),
            ("(-1,)", (-1.0,), EITHER),
            ("('a',)", ("a",), INVALID),
            ("(True,)", (True,), INVALID),
            ("empty", (), EITHER),
            ("a number", 1.0, INVALID),
            ("None", None, INVALID),
        ]
    if kind.startswith("int"):
        return int_inputs(default, allow_none=optional)
    if kind.startswith("float"):
        return _scalar_inputs(default, optional)
    if "str" in kind or kind.startswith("Mapping"):
        return [
            ("unknown name", "no-such-name", INVALID),
            ("a number", 5, INVALID),
            ("bytes", b"x", INVALID),
            ("object", _Junk(), INVALID),
            ("None", None, VALID if optional else INVALID),
        ]
    return [("object", _Junk(), INVALID)]


# -- the registries -----------------------------------------------------------------------
def small_params(env: EnvSpec) -> dict:
    """Parameters that make a registered game small and fast (4 agents, Braess's network)."""
    params = {}
    if env.size_field is not None and _stage_game(env):
        params[env.size_field] = 4
    if "network" in {field.name for field in dataclasses.fields(env.config)}:
        params["network"] = "braess"
    return params


def _start(game):
    return game.strategy_set.uniform_point(), game.incentive_set.project(np.zeros(game.incentive_set.dim))


def _interior_strategy(game) -> np.ndarray:
    strategy_set = game.strategy_set
    if strategy_set.kind == "box":
        lower = np.where(np.isfinite(strategy_set.lower), strategy_set.lower, -1.0)
        upper = np.where(np.isfinite(strategy_set.upper), strategy_set.upper, lower + 2.0)
        return lower + 0.37 * (upper - lower)
    return strategy_set.uniform_point()


def _interior_incentive(game) -> np.ndarray:
    incentive_set = game.incentive_set
    return incentive_set.lower + 0.41 * (incentive_set.upper - incentive_set.lower)


def _model_envs() -> list[EnvSpec]:
    return [env for env in env_registry().values() if "model" in env.capabilities]


def _learners_for(env: EnvSpec, rollouts: bool = False):
    """The learners that run on ``env``'s model (``rollouts=False``) or on its episodic task."""
    return [
        learner
        for learner in learner_registry().values()
        if learner.requires <= env.capabilities and ("episodic" in learner.requires) == rollouts
    ]


def _stage_game(env: EnvSpec) -> bool:
    """Whether ``env`` is a stage game with a model (box or simplex actions), as opposed to an
    episodic-only game (discrete actions, a task instead of a model)."""
    return "model" in env.capabilities


def _short_run(game, learner, planner, iterations: int = 3):
    from planners.engine import simulate

    last = None
    for record in simulate(game, learner, planner, seed=0, iterations=iterations, metrics=()):
        last = record
    return last.strategy, last.incentive


def config_cases() -> Iterator[Case]:
    """Every field of every registered config (env, learner, planner) replaced by bad and
    borderline values; accepted values are followed by a short use of the object."""
    for env in env_registry().values():
        base = small_params(env)

        def use_env(params, env=env):
            environment = env.make_env(**params)
            observations, _ = environment.reset(seed=0)
            if not _stage_game(env):
                actions = {agent: 0 for agent in environment.agents}
            else:
                actions = environment.actions_from_strategy(environment.strategy)
            return observations, environment.step(actions)[:2]

        def use_game(params, env=env):
            game = env.make_game(**params)
            if not _stage_game(env):
                return game.observe(game.reset(2, np.random.default_rng(0)))
            x, theta = _start(game)
            return game.rewards(x, theta), game.social_cost(x, theta), game.pseudo_gradient(x, theta)

        for field in dataclasses.fields(env.config):
            for label, value, expect in _field_inputs(field):
                params = {**base, field.name: value}
                yield Case(
                    f"{env.env_id}(...)",
                    field.name,
                    f"{field.name}={label}",
                    lambda p=params, f=use_env: f(p),
                    expect,
                )
                if field.name not in env.env_only_parameters:
                    yield Case(
                        f"{env.env_id}.make_game",
                        field.name,
                        f"{field.name}={label}",
                        lambda p=params, f=use_game: f(p),
                        expect,
                    )
        if _stage_game(env):
            game = env.make_game(**base)
            bounds = (game.incentive_set.lower, game.incentive_set.upper)
            for label, value, expect in array_inputs(_interior_incentive(game), *bounds):
                expect = VALID if value is None else expect  # None: the default incentive
                yield Case(
                    f"{env.env_id}(incentive=...)",
                    "incentive",
                    label,
                    lambda v=value, env=env, b=base: env.make_env(incentive=v, **b).incentive,
                    expect,
                )
        for label, value, expect in (
            ("'rgb_array'", "rgb_array", INVALID),
            ("5", 5, INVALID),
            ("'ansi'", "ansi", VALID),
        ):
            yield Case(
                f"{env.env_id}(render_mode=...)",
                "render_mode",
                label,
                lambda v=value, env=env, b=base: env.make_env(render_mode=v, **b).render_mode,
                expect,
            )
        yield Case(
            f"{env.env_id}(...)",
            "no_such_parameter",
            "unknown keyword",
            lambda env=env, b=base: env.make_env(no_such_parameter=1, **b),
            INVALID,
        )

    for env in _model_envs():
        game = env.make_game(**small_params(env))
        learners = _learners_for(env)
        for learner in learners:

            def use_learner(params, learner=learner, game=game):
                from agents.play import model_feedback

                built = learner.make(game, 0, **params)
                x, theta = _start(game)
                return built.step(x, 0, model_feedback(game, built, x, theta))

            yield from _field_cases(f"learner {learner.name} on {env.game}", learner.config, use_learner)
            for label, value, expect in seed_inputs(allow_none=False, allow_generator=False):
                yield Case(
                    f"learner {learner.name} on {env.game}",
                    "seed",
                    f"seed={label}",
                    lambda v=value, learner=learner, game=game: learner.make(game, v).feedback,
                    expect,
                )
        gradient = learners[0]
        for planner in planner_registry().values():
            if not valid(env, gradient, planner):
                continue

            def use_planner(params, planner=planner, game=game, gradient=gradient):
                follower = gradient.make(game, 0)
                return _short_run(game, follower, planner.make(game, follower, 0, **params))

            yield from _field_cases(f"planner {planner.name} on {env.game}", planner.config, use_planner)


def _episodic_designer_cases() -> Iterator[Case]:
    """Configs of the planners of episodic games (built on small tasks, not run)."""
    for env in env_registry().values():
        if "episodic" not in env.capabilities:
            continue
        task = env.make_task(**small_params(env))
        for learner in _learners_for(env, rollouts=True):
            for field in dataclasses.fields(learner.config):
                for label, value, expect in _field_inputs(field):
                    yield Case(
                        f"learner {learner.name} on {env.game}",
                        field.name,
                        f"{field.name}={label}",
                        lambda p={field.name: value}, learner=learner, task=task: learner.make(
                            task, 0, **p
                        ).state_dict(),
                        expect,
                    )
            followers = learner.make(task, 0)
            for planner in planner_registry().values():
                if not valid(env, learner, planner):
                    continue
                for field in dataclasses.fields(planner.config):
                    for label, value, expect in _field_inputs(field):
                        yield Case(
                            f"planner {planner.name} on {env.game}",
                            field.name,
                            f"{field.name}={label}",
                            lambda p={field.name: value}, planner=planner, task=task, f=followers: (
                                planner.make(task, f, 0, **p).state_dict()
                            ),
                            expect,
                        )
            break


GAME_METHODS = (
    ("rewards", ("x", "theta")),
    ("pseudo_gradient", ("x", "theta")),
    ("jvp_x", ("x", "theta", "tangent")),
    ("vjp_x", ("x", "theta", "cotangent")),
    ("jvp_theta", ("x", "theta", "theta_tangent")),
    ("vjp_theta", ("x", "theta", "cotangent")),
    ("jacobian_x_structure", ("x", "theta")),
    ("social_cost", ("x", "theta")),
    ("social_cost_grad_x", ("x", "theta")),
    ("social_cost_grad_theta", ("x", "theta")),
    ("jacobian_x", ("x", "theta")),
    ("jacobian_theta", ("x", "theta")),
    ("equilibrium", ("theta",)),
    ("equilibrium_social_cost", ("theta",)),
    ("best_response", ("x", "theta")),
    ("unilateral_rewards", ("x", "theta", "actions")),
    ("validate_strategy", ("x",)),
    ("validate_incentive", ("theta",)),
)
"""The public methods of :class:`~incentive_envs.core.IncentiveGame` and their array arguments."""


def game_cases() -> Iterator[Case]:
    """Every public model method of every model game, one array argument replaced."""
    for env in _model_envs():
        game = env.make_game(**small_params(env))
        strategy_set, incentive_set = game.strategy_set, game.incentive_set
        x, theta = _interior_strategy(game), _interior_incentive(game)
        rng = np.random.default_rng(0)
        arrays = {
            "x": (
                x,
                strategy_set.lower if strategy_set.kind == "box" else None,
                strategy_set.upper if strategy_set.kind == "box" else None,
            ),
            "theta": (theta, incentive_set.lower, incentive_set.upper),
            "tangent": (rng.standard_normal(strategy_set.dim), None, None),
            "cotangent": (rng.standard_normal(strategy_set.dim), None, None),
            "theta_tangent": (rng.standard_normal(incentive_set.dim), None, None),
        }
        if game.has_payoffs:
            arrays["actions"] = (
                strategy_set.action_grid(5),
                strategy_set.lower[:, None],
                strategy_set.upper[:, None],
            )
        for method, arguments in GAME_METHODS:
            if (method == "best_response" and not game.has_best_response) or (
                method == "unilateral_rewards" and not game.has_payoffs
            ):
                continue
            good = {name: arrays[name][0] for name in arguments}
            for argument in arguments:
                reference, low, high = arrays[argument]
                for label, value, expect in array_inputs(reference, low, high):
                    values = [value if name == argument else good[name] for name in arguments]
                    name = "tangent" if argument == "theta_tangent" else argument
                    bound = getattr(game, method)
                    yield Case(f"{env.game}.{method}", name, label, lambda m=bound, v=values: m(*v), expect)
        if hasattr(game, "system_optimum"):
            for keyword, inputs in (
                (
                    "relative_gap",
                    [
                        ("1e-300", 1e-300, EITHER),
                        ("NaN", math.nan, INVALID),
                        ("0", 0.0, INVALID),
                        ("'1e-6'", "1e-6", INVALID),
                    ],
                ),
                (
                    "max_iterations",
                    [("1.5", 1.5, INVALID), ("10**30", 10**30, INVALID), ("0", 0, INVALID), ("3", 3, EITHER)],
                ),
                (
                    "on_unconverged",
                    [("'ignore'", "ignore", INVALID), ("5", 5, INVALID), ("'raise'", "raise", EITHER)],
                ),
            ):
                for label, value, expect in inputs:
                    yield Case(
                        f"{env.game}.social_optimum",
                        keyword,
                        label,
                        lambda k=keyword, v=value, g=game: g.social_optimum(**{k: v}),
                        expect,
                    )


def env_cases() -> Iterator[Case]:
    """``reset``, ``step``, ``step_arrays`` and ``set_incentive`` of every registered env, with
    the env's state checked after every refused call."""
    for env in env_registry().values():
        environment = env.make_env(**small_params(env))
        episodic = not _stage_game(env)
        environment.reset(seed=0)
        state = lambda e=environment: snapshot(e)  # noqa: E731 - one per env

        def fresh(e=environment):
            e.reset(seed=0)
            return e

        for label, value, expect in seed_inputs(allow_none=True, allow_generator=False):
            yield Case(
                f"{env.env_id}.reset",
                "seed",
                f"seed={label}",
                lambda v=value, e=environment: e.reset(seed=v)[0],
                expect,
                state,
                fresh,
            )
        if episodic:
            incentive_inputs = array_inputs(
                np.full(environment.n_agents, 0.5), 0.0, environment.max_incentive
            )
        else:
            game = environment.game
            incentive_inputs = array_inputs(
                _interior_incentive(game), game.incentive_set.lower, game.incentive_set.upper
            )
        for label, value, expect in incentive_inputs:
            yield Case(
                f"{env.env_id}.set_incentive",
                "incentive",
                label,
                lambda v=value, e=environment: e.set_incentive(v),
                expect,
                state,
                fresh,
            )
            expect = VALID if value is None else expect  # None: keep the incentive
            yield Case(
                f"{env.env_id}.reset(options)",
                "incentive",
                label,
                lambda v=value, e=environment: e.reset(options={"incentive": v})[0],
                expect,
                state,
                fresh,
            )
        for label, value, expect in (
            ("a list", [("incentive", 0.0)], INVALID),
            ("a string", "incentive", INVALID),
            ("empty", {}, VALID),
        ):
            yield Case(
                f"{env.env_id}.reset(options)",
                "options",
                label,
                lambda v=value, e=environment: e.reset(options=v)[0],
                expect,
                state,
                fresh,
            )
        agents = environment.possible_agents
        if episodic:
            n_actions = environment.action_space(agents[0]).n
            action_inputs = [
                ("valid", 0, VALID),
                ("NumPy int64", np.int64(n_actions - 1), VALID),
                ("0-d array", np.array(1), VALID),
                ("-1", -1, INVALID),
                ("n_actions", n_actions, INVALID),
                ("1.5", 1.5, INVALID),
                ("1.0", 1.0, INVALID),
                ("'1'", "1", INVALID),
                ("True", True, INVALID),
                ("None", None, INVALID),
                ("NaN", math.nan, INVALID),
                ("[0]", [0], INVALID),
                ("10**30", 10**30, INVALID),
            ]
        else:
            game = environment.game
            reference = _interior_strategy(game).reshape(len(agents), -1)
            low, high = environment._action_low_array, environment._action_high_array
            action_inputs = [
                (f"agent 0: {label}", value, expect)
                for label, value, expect in array_inputs(reference[0], low[0], high[0])
            ]
            for label, value, expect in array_inputs(reference, low, high):
                yield Case(
                    f"{env.env_id}.step_arrays",
                    "actions",
                    label,
                    lambda v=value, e=environment: e.step_arrays(v)[:2],
                    expect,
                    state,
                    fresh,
                )
        good = {agent: (0 if episodic else reference[i]) for i, agent in enumerate(agents)}
        for label, value, expect in action_inputs:
            actions = {**good, agents[0]: value}
            yield Case(
                f"{env.env_id}.step",
                "actions|" + agents[0],
                label,
                lambda a=actions, e=environment: e.step(a)[:2],
                expect,
                state,
                fresh,
            )
        for label, actions in (
            ("missing agent", {agent: value for agent, value in list(good.items())[1:]}),
            ("unknown agent", {**good, "intruder": next(iter(good.values()))}),
            ("a list", list(good.values())),
            ("None", None),
        ):
            yield Case(
                f"{env.env_id}.step",
                "actions",
                label,
                lambda a=actions, e=environment: e.step(a)[:2],
                INVALID,
                state,
                fresh,
            )

        def after_end(e=environment, agents=agents, good=good):
            e.reset(seed=0)
            e.agents = []
            return e.step(good)

        yield Case(f"{env.env_id}.step", "reset", "step after the episode ended", after_end, INVALID)


def _over(target: str, argument: str, inputs, call: Callable, state=None, setup=None) -> Iterator[Case]:
    """One case per ``(label, value, expect)`` of ``inputs``, calling ``call(value)``."""
    for label, value, expect in inputs:
        yield Case(target, argument, label, functools.partial(call, value), expect, state, setup)


def _field_cases(target: str, config: type, use: Callable) -> Iterator[Case]:
    """Every field of the dataclass ``config`` replaced by bad and borderline values:
    ``use({field: value})`` builds (and briefly uses) the object."""
    for field in dataclasses.fields(config):
        for label, value, expect in _field_inputs(field):
            yield Case(
                target,
                field.name,
                f"{field.name}={label}",
                functools.partial(use, {field.name: value}),
                expect,
            )


def learner_cases() -> Iterator[Case]:
    """``step`` and ``load_state_dict`` of every learner on every model game it applies to."""
    from agents.play import model_feedback

    for env in _model_envs():
        game = env.make_game(**small_params(env))
        x, theta = _interior_strategy(game), _interior_incentive(game)
        strategy_set = game.strategy_set
        low = strategy_set.lower if strategy_set.kind == "box" else None
        high = strategy_set.upper if strategy_set.kind == "box" else None
        for spec in _learners_for(env):
            learner = spec.make(game, 0)
            feedback = model_feedback(game, learner, x, theta)
            state = functools.partial(snapshot, learner)
            step = f"learner {spec.name} on {env.game}.step"
            bounds = (low, high) if spec.feedback == "best_response" else (None, None)
            yield from _over(
                step,
                "x",
                array_inputs(x, low, high),
                lambda v, lr=learner, fb=feedback: lr.step(v, 0, fb),
                state,
            )
            yield from _over(
                step, "k", int_inputs(3), lambda v, lr=learner, fb=feedback, x=x: lr.step(x, v, fb), state
            )
            yield from _over(
                step,
                "feedback",
                array_inputs(feedback, *bounds),
                lambda v, lr=learner, x=x: lr.step(x, 0, v),
                state,
            )
            yield from _state_dict_cases(f"learner {spec.name} on {env.game}", learner)


def _mutations(state, path: str = "state") -> Iterator[tuple[str, str, object]]:
    """``(path, label, mutated state)`` for every leaf of a JSON-like state."""
    import copy

    def set_at(root, keys, value):
        root = copy.deepcopy(root)
        target = root
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
        return root

    def leaves(node, keys):
        if isinstance(node, dict):
            for key, value in node.items():
                yield from leaves(value, keys + [key])
        elif isinstance(node, list) and node and all(isinstance(item, (int, float)) for item in node):
            yield keys, node
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from leaves(value, keys + [index])
        else:
            yield keys, node

    for keys, leaf in leaves(state, []):
        if not keys:
            continue
        where = "".join(f"[{key!r}]" for key in keys)
        replacements = [("None", None), ("string", "x"), ("NaN", math.nan), ("object", {"x": 1})]
        if isinstance(leaf, list):
            replacements += [
                ("one entry short", leaf[:-1]),
                ("NaN entry", [math.nan] + leaf[1:]),
                ("one entry more", leaf + leaf[:1]),
            ]
        elif isinstance(leaf, (int, float)) and not isinstance(leaf, bool):
            replacements += [("-1", -1), ("1.5", 1.5), ("10**30", 10**30), ("inf", math.inf)]
        for label, value in replacements:
            if value == leaf and not (isinstance(value, float) and math.isnan(value)):
                continue
            yield path + where, label, set_at(state, keys, value), str(keys[0])
    yield (
        path,
        "missing a key",
        dict(list(state.items())[1:]) if isinstance(state, dict) and state else {"x": 1},
        "state",
    )
    yield (
        path,
        "extra key",
        {**state, "intruder": 1} if isinstance(state, dict) else {"intruder": 1},
        "state|intruder",
    )
    yield path, "a list", [1, 2], "state"


def _state_dict_cases(target: str, thing) -> Iterator[Case]:
    state = thing.state_dict()
    original = json.loads(json.dumps(state))
    snap = lambda t=thing: snapshot(t)  # noqa: E731
    yield Case(
        f"{target}.load_state_dict",
        "state",
        "its own state",
        lambda t=thing, s=original: t.load_state_dict(s),
        VALID,
        snap,
    )
    for path, label, mutated, key in _mutations(original):
        # a count, an optional entry or a history's length: the state's owner decides
        expect = (
            EITHER
            if label in ("-1", "1.5", "10**30", "None", "one entry short", "one entry more")
            else INVALID
        )
        yield Case(
            f"{target}.load_state_dict",
            f"state|{key}",
            f"{path}: {label}",
            lambda t=thing, s=mutated: t.load_state_dict(s),
            expect,
            snap,
        )


def planner_cases() -> Iterator[Case]:
    """``update``, ``reset`` and ``load_state_dict`` of every planner on every model game."""
    for env in _model_envs():
        game = env.make_game(**small_params(env))
        gradient = _learners_for(env)[0]
        follower = gradient.make(game, 0)
        x, theta = _interior_strategy(game), _interior_incentive(game)
        strategy_set = game.strategy_set
        low = strategy_set.lower if strategy_set.kind == "box" else None
        high = strategy_set.upper if strategy_set.kind == "box" else None
        incentive_bounds = (game.incentive_set.lower, game.incentive_set.upper)
        for spec in planner_registry().values():
            if not valid(env, gradient, spec):
                continue
            planner = spec.make(game, follower, 0)
            _short_run(game, follower, planner, 2)  # a state past the start
            state = functools.partial(snapshot, planner)
            advance = functools.partial(planner.advance_followers, follower, x, theta, 1)
            target = f"planner {spec.name} on {env.game}"
            update = f"{target}.update"
            yield from _over(
                update,
                "theta",
                array_inputs(theta, *incentive_bounds),
                lambda v, p=planner, x=x: p.update(v, x, 1),
                state,
                advance,
            )
            yield from _over(
                update,
                "x",
                array_inputs(x, low, high),
                lambda v, p=planner, t=theta: p.update(t, v, 1),
                state,
                advance,
            )
            yield from _over(
                update,
                "k",
                int_inputs(1),
                lambda v, p=planner, x=x, t=theta: p.update(t, x, v),
                state,
                advance,
            )
            yield from _over(
                f"{target}.reset",
                "seed",
                seed_inputs(allow_none=True, allow_generator=False),
                planner.reset,
                state,
            )
            yield from _state_dict_cases(target, planner)


def network_cases() -> Iterator[Case]:
    """The cost functions of a road network and the network generators."""
    from incentive_envs.routing.network import braess, grid, pigou

    network = grid(3, 3, seed=0)
    flow = np.linspace(0.0, 50.0, network.n_links)
    for method in (
        "link_cost",
        "link_travel_time",
        "link_cost_derivative",
        "link_cost_integral",
        "marginal_cost",
        "marginal_cost_derivative",
    ):
        for label, value, expect in array_inputs(flow, 0.0, None):
            bound = getattr(network, method)
            yield Case(f"network.{method}", "flow", label, lambda m=bound, v=value: m(v), expect)
    for builder, keyword, inputs in (
        (grid, "rows", int_inputs(3)),
        (grid, "cols", int_inputs(3)),
        (grid, "seed", seed_inputs(allow_none=False, allow_generator=True)),
        (braess, "demand", _scalar_inputs(6.0, False)),
        (
            braess,
            "bridge",
            [("'no'", "no", INVALID), ("0", 0, INVALID), ("NumPy bool", np.bool_(False), VALID)],
        ),
        (pigou, "demand", _scalar_inputs(1.0, False)),
        (pigou, "power", _scalar_inputs(1.0, False)),
    ):
        for label, value, expect in inputs:
            params = {"rows": 3, "cols": 3} if builder is grid else {}
            params[keyword] = value

            def use(builder=builder, params=params):
                built = builder(**params)
                return built.link_cost(np.full(built.n_links, 1.0)), built.demand

            yield Case(f"routing.{builder.__name__}", keyword, label, use, expect)


# -- files ------------------------------------------------------------------------------
def _tntp_pair(directory: Path) -> tuple[str, str]:
    from incentive_envs.routing.network import grid
    from incentive_envs.routing.tntp import write_tntp

    net, trips = directory / "grid_net.tntp", directory / "grid_trips.tntp"
    write_tntp(grid(3, 3, seed=0), net, trips)
    return net.read_text(), trips.read_text()


def _line_mutations(text: str, rng: np.random.Generator, count: int) -> Iterator[tuple[str, str]]:
    """``(label, mutated text)``: malformed numbers, missing or extra fields and lines."""
    lines = text.splitlines()
    data = [i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith(("~", "<"))]
    meta = [
        i for i, line in enumerate(lines) if line.lstrip().startswith("<") and "END OF METADATA" not in line
    ]
    bad_numbers = ("abc", "nan", "inf", "-inf", "1e999", "-1", "0x10", "1,5", "", "1.5.2", "--3")
    for _ in range(count):
        kind = rng.integers(5)
        mutated = list(lines)
        if kind == 0 and data:
            index = int(rng.choice(data))
            fields = mutated[index].split()
            position = int(rng.integers(len(fields))) if fields else 0
            replacement = str(rng.choice(bad_numbers))
            if fields and fields[position] not in (";",):
                fields[position] = replacement
                mutated[index] = "\t" + "\t".join(fields)
                yield f"line {index + 1}: field {position + 1} -> {replacement!r}", "\n".join(mutated) + "\n"
        elif kind == 1 and meta:
            index = int(rng.choice(meta))
            key = mutated[index].split(">")[0] + ">"
            replacement = str(rng.choice(("inf", "nan", "-3", "1.5", "abc", "", "1e30", "0")))
            mutated[index] = f"{key} {replacement}"
            yield f"line {index + 1}: {key} {replacement!r}", "\n".join(mutated) + "\n"
        elif kind == 2 and data:
            index = int(rng.choice(data))
            del mutated[index]
            yield f"line {index + 1} deleted", "\n".join(mutated) + "\n"
        elif kind == 3 and data:
            index = int(rng.choice(data))
            fields = mutated[index].split()
            mutated[index] = "\t" + "\t".join(fields[: max(1, len(fields) // 2)])
            yield f"line {index + 1} truncated", "\n".join(mutated) + "\n"
        elif kind == 4:
            cut = int(rng.integers(len(text)))
            yield f"file cut at character {cut}", text[:cut]


def _valid_variants(net: str, trips: str, rng: np.random.Generator) -> Iterator[tuple[str, str, str]]:
    """``(label, net, trips)`` of valid files written differently: BOM, CRLF, comments anywhere,
    tabs, trailing spaces, intrazonal trips, constant-cost connectors."""
    yield "as written", net, trips
    yield "UTF-8 BOM", "\ufeff" + net, "\ufeff" + trips
    yield "CRLF line ends", net.replace("\n", "\r\n"), trips.replace("\n", "\r\n")
    yield "CR line ends", net.replace("\n", "\r"), trips.replace("\n", "\r")
    yield "trailing spaces", "\n".join(line + "   " for line in net.splitlines()) + "\n", trips
    for _ in range(6):
        lines = net.splitlines()
        position = int(rng.integers(1, len(lines)))
        lines.insert(position, "~ a comment line")
        yield f"comment line at line {position + 1}", "\n".join(lines) + "\n", trips
    for _ in range(3):
        lines = trips.splitlines()
        position = int(rng.integers(1, len(lines)))
        lines.insert(position, "~ a comment line")
        yield f"trips comment line at line {position + 1}", net, "\n".join(lines) + "\n"
    lines = net.splitlines()
    header = next(
        i for i, line in enumerate(lines) if line.lstrip().startswith("~") and "init" in line.lower()
    )
    first = lines[header + 1].split()
    fields = list(first)
    fields[5] = fields[6] = "0"  # b = 0, power = 0 (TNTP column order): a constant-cost connector
    lines[header + 1] = "\t" + "\t".join(fields)
    yield "a constant-cost connector (b = 0, power = 0)", "\n".join(lines) + "\n", trips
    origin_block = trips.split("Origin")
    if len(origin_block) > 1:
        first_origin = origin_block[1].split()[0]
        intrazonal = trips.replace(
            f"Origin {first_origin}\n", f"Origin {first_origin}\n    {first_origin} :    0.0;\n", 1
        )
        yield "an intrazonal zero trip", net, intrazonal


def _file_expectation(label: str) -> str:
    """A deleted line or a cut file may still be a valid (smaller) file, and a first through
    node of 0, an empty (left out) trailing field and a negative toll are valid; everything else
    the line mutations make is malformed."""
    return (
        EITHER if "deleted" in label or "cut" in label or label.endswith(("'0'", "''", "'-1'")) else INVALID
    )


def tntp_cases(directory: Path, rng: np.random.Generator, count: int = 400) -> Iterator[Case]:
    """``read_tntp`` on mutated copies of a small network's files (bad) and on valid variants,
    including every network in the project's cache (``cache_dir() / "tntp"``) if present."""
    from incentive_envs.routing.tntp import cache_dir, read_tntp

    net, trips = _tntp_pair(directory)
    counter = iter(range(10**9))

    def write(net_text: str, trips_text: str) -> tuple[Path, Path]:
        index = next(counter)
        net_path, trips_path = directory / f"m{index}_net.tntp", directory / f"m{index}_trips.tntp"
        net_path.write_text(net_text, newline="")
        trips_path.write_text(trips_text, newline="")
        return net_path, trips_path

    def read(net_path, trips_path):
        network = read_tntp(net_path, trips_path)
        return network.link_cost(np.zeros(network.n_links)), network.demand

    for label, text in _line_mutations(net, rng, count // 2):
        paths = write(text, trips)
        yield Case("read_tntp(net)", paths[0].name, label, lambda p=paths: read(*p), _file_expectation(label))
    for label, text in _line_mutations(trips, rng, count // 2):
        paths = write(net, text)
        yield Case(
            "read_tntp(trips)", paths[1].name, label, lambda p=paths: read(*p), _file_expectation(label)
        )
    for label, net_text, trips_text in _valid_variants(net, trips, rng):
        paths = write(net_text, trips_text)
        yield Case("read_tntp(valid)", paths[0].name, label, lambda p=paths: read(*p), VALID)
    garbage = bytes(rng.integers(0, 256, 400, dtype=np.uint8))
    paths = write("", "")
    paths[0].write_bytes(garbage)
    yield Case("read_tntp(net)", paths[0].name, "binary garbage", lambda p=paths: read(*p), INVALID)
    yield Case(
        "read_tntp(net)",
        "net_path|missing_net.tntp",
        "missing file",
        lambda: read(directory / "missing_net.tntp", directory / "m0_trips.tntp"),
        INVALID,
    )
    yield Case(
        "read_tntp(net)",
        f"net_path|{directory.name}",
        "a directory",
        lambda: read(directory, directory / "m0_trips.tntp"),
        INVALID,
    )
    yield Case(
        "read_tntp(net)", "net_path", "a number", lambda: read(5, directory / "m0_trips.tntp"), INVALID
    )
    cached = cache_dir() / "tntp"
    for net_path in sorted(cached.glob("*/*_net.tntp")) if cached.is_dir() else []:
        trips_path = next(iter(sorted(net_path.parent.glob("*_trips.tntp"))), None)
        if trips_path is not None:
            yield Case(
                "read_tntp(real)",
                net_path.name,
                net_path.parent.name,
                lambda n=net_path, t=trips_path: read(n, t),
                VALID,
            )


def experiment_cases(directory: Path) -> Iterator[Case]:
    """:class:`ExperimentConfig` fields, :func:`run_experiment` arguments and tampered
    checkpoints (each resumed from a fresh copy of a paused run)."""
    import shutil

    from planners.experiment import ExperimentConfig, run_experiment

    base = {"game": "cournot", "game_params": {"n_firms": 4}, "iterations": 4}

    def run(params: dict, **keywords):
        config = ExperimentConfig(**{**base, **params})
        result = run_experiment(config, **{"progress": False, "plot": False, **keywords})
        return None if result is None else result["final"]

    for field in dataclasses.fields(ExperimentConfig):
        if field.name in ("game", "iterations"):
            continue
        inputs = (
            _field_inputs(field)
            if field.name not in ("game_params", "learner_params", "planner_params")
            else [
                ("unknown parameter", {"no_such_parameter": 1}, INVALID),
                ("a list", [("n", 1)], INVALID),
                ("a string", "n=1", INVALID),
                ("non-string key", {1: 2}, INVALID),
                (
                    "NaN value",
                    {"step_size": math.nan} if field.name != "game_params" else {"n_firms": math.nan},
                    INVALID,
                ),
            ]
        )
        for label, value, expect in inputs:
            yield Case(
                "ExperimentConfig",
                field.name,
                f"{field.name}={label}",
                lambda p={field.name: value}: run(p),
                expect,
            )
    for label, value, expect in int_inputs(4):
        if label in ("-1", "0"):
            expect = INVALID
        yield Case(
            "ExperimentConfig",
            "iterations",
            f"iterations={label}",
            lambda v=value: run({"iterations": v}),
            expect,
        )
    for keyword, inputs in (
        ("checkpoint_every", int_inputs(2)),
        ("stop_after", int_inputs(2, allow_none=True)),
        ("progress", [("'no'", "no", INVALID), ("0", 0, INVALID)]),
        ("plot", [("'no'", "no", INVALID), ("1", 1, INVALID)]),
    ):
        for label, value, expect in inputs:
            if keyword == "checkpoint_every" and label in ("-1", "0"):
                expect = INVALID

            def call(keyword=keyword, value=value):
                out = Path(tempfile.mkdtemp(dir=directory))
                return run({}, out=out, **{keyword: value})

            yield Case("run_experiment", keyword, f"{keyword}={label}", call, expect)
    not_a_directory = directory / "a_file"
    not_a_directory.write_text("x")
    for label, out in (
        ("an existing file", not_a_directory),
        ("under a file", not_a_directory / "run"),
        ("a number", 5),
    ):
        yield Case("run_experiment", "out", label, lambda o=out: run({}, out=o), INVALID)

    def stop_at_zero():
        out = Path(tempfile.mkdtemp(dir=directory))
        run({}, out=out, stop_after=0)
        if not (out / "state.json").exists():
            raise ValueError("out: stop_after=0 left no checkpoint")
        return run({}, out=out)

    yield Case("run_experiment", "stop_after", "stop_after=0, then resume", stop_at_zero, VALID)
    template = Path(tempfile.mkdtemp(dir=directory))
    run({}, out=template, stop_after=2, checkpoint_every=1)
    state = json.loads((template / "state.json").read_text())

    def resume(mutate_state=None, metrics_text=None, state_text=None):
        out = Path(tempfile.mkdtemp(dir=directory))
        shutil.copytree(template, out, dirs_exist_ok=True)
        if mutate_state is not None:
            (out / "state.json").write_text(json.dumps(mutate_state, allow_nan=True))
        if state_text is not None:
            (out / "state.json").write_text(state_text)
        if metrics_text is not None:
            (out / "metrics.jsonl").write_text(metrics_text)
        return run({}, out=out)

    yield Case("run_experiment(resume)", "state.json", "untouched", lambda: resume(), VALID)
    text = (template / "state.json").read_text()
    for cut in (0, 1, len(text) // 3, len(text) - 2):
        yield Case(
            "run_experiment(resume)",
            "state.json",
            f"state.json cut at {cut}",
            lambda c=cut: resume(state_text=text[:c]),
            INVALID,
        )
    yield Case(
        "run_experiment(resume)",
        "state.json",
        "state.json a list",
        lambda: resume(state_text="[1, 2]"),
        INVALID,
    )
    for path, label, mutated, _ in _mutations(state):
        # any 128-bit integers make a PCG64 state, so a tampered generator state is not detectable
        numeric = label in ("-1", "1.5", "10**30")
        expect = EITHER if numeric and ("time" in path or path.startswith("state['rng']")) else INVALID
        yield Case(
            "run_experiment(resume)",
            "state.json",
            f"{path}: {label}",
            lambda m=mutated: resume(mutate_state=m),
            expect,
        )
    metrics = (template / "metrics.jsonl").read_text()
    for label, value in (
        ("cut mid-line", metrics[: len(metrics) // 2 + 3]),
        ("emptied", ""),
        ("garbage line", "{x\n" + metrics),
    ):
        yield Case(
            "run_experiment(resume)",
            "metrics.jsonl",
            f"metrics.jsonl {label}",
            lambda v=value: resume(metrics_text=v),
            INVALID,
        )


def all_cases(directory: str | Path, seed: int = 0, tntp_count: int = 400) -> list[Case]:
    """Every case of the harness (files are written under ``directory``)."""
    directory = Path(directory)
    rng = np.random.default_rng(seed)
    cases: list[Case] = []
    for source in (
        config_cases(),
        _episodic_designer_cases(),
        game_cases(),
        env_cases(),
        learner_cases(),
        planner_cases(),
        network_cases(),
        tntp_cases(directory, rng, tntp_count),
        experiment_cases(directory),
    ):
        cases.extend(source)
    return cases


def fuzz(directory: str | Path | None = None, *, seed: int = 0, timeout: float = 20.0, progress=None) -> dict:
    """Build and run every case and return :func:`report`'s summary plus the run time."""
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if directory is None:
            directory = stack.enter_context(tempfile.TemporaryDirectory())
        outcomes = run_cases(all_cases(directory, seed), timeout, progress)
    summary = report(outcomes)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    return summary
