"""The project's validation policy, in one place.

Every public entry point — env constructors and ``step``/``reset``/``set_incentive``, game-model
methods, learners, planners, the experiment engine and the file readers — checks its inputs
with these helpers before it changes anything, so that bad input

* raises ``ValueError`` naming the argument and quoting the value (never ``TypeError``,
  ``OverflowError`` or an error from deep inside NumPy/SciPy);
* is never coerced: strings (even ``"5"``), booleans where numbers are expected, complex
  numbers, ``None`` and ragged lists are refused; integers are not accepted where a
  non-integer was given (``1.5`` is not a seed);
* is never silently repaired: no clipping, no broadcasting of a wrong shape, no NaN or inf
  passed through.

Hot inner loops (the engine's per-iteration calls) use the games' unchecked internal methods
once the inputs of a run have been validated here.
"""

from __future__ import annotations

import numbers

import numpy as np

REAL_KINDS = "iuf"
"""NumPy dtype kinds accepted as real numbers: signed and unsigned integers and floats."""


def _describe(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def as_finite_array(value, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """A fresh float64 copy of ``value``, or ``ValueError`` naming ``name``.

    Parameters
    ----------
    value : array_like
        Real numbers (Python or NumPy integers/floats, arrays of them). Strings, booleans,
        complex numbers, ``None`` and ragged or object arrays are refused.
    name : str
        The argument name quoted in the error message.
    shape : tuple of int, optional
        The exact shape required (nothing is broadcast).
    """
    if isinstance(value, (str, bytes)):
        raise ValueError(f"{name} must be real numbers, got the string {_describe(value)}")
    try:
        array = np.asarray(value)
    except (TypeError, ValueError, OverflowError) as error:
        raise ValueError(f"{name} must be an array of real numbers, got {_describe(value)}") from error
    if array.dtype.kind not in REAL_KINDS:
        raise ValueError(f"{name} must be real numbers, got dtype {array.dtype} (value {_describe(value)})")
    if isinstance(value, (list, tuple)) and any(
        isinstance(item, (bool, np.bool_)) for item in np.asarray(value, dtype=object).flat
    ):  # NumPy turns [1.0, True] into [1.0, 1.0]: a flag is not a number
        raise ValueError(f"{name} must be real numbers, got a boolean in {_describe(value)}")
    if shape is not None and array.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got shape {array.shape}")
    array = np.array(array, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        bad = np.flatnonzero(~np.isfinite(array.ravel()))[:5]
        raise ValueError(f"{name} must be finite, got non-finite entries at flat indices {bad.tolist()}")
    return array


def check_scalar(
    value,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """Validate a finite real number in ``[low, high]`` (ends optionally open) and return it
    as ``float``; ``ValueError`` naming ``name`` otherwise (booleans and strings refused)."""
    if isinstance(value, (bool, np.bool_)) or not (
        isinstance(value, numbers.Real)
        or (isinstance(value, np.ndarray) and value.shape == () and value.dtype.kind in REAL_KINDS)
    ):
        raise ValueError(f"{name} must be a real number, got {_describe(value)}")
    try:
        number = float(value)
    except (OverflowError, ValueError, TypeError) as error:
        raise ValueError(f"{name} must be a finite real number, got {_describe(value)}") from error
    if not np.isfinite(number):
        raise ValueError(f"{name} must be finite, got {_describe(value)}")
    if low is not None and (number < low or (not low_inclusive and number == low)):
        raise ValueError(f"{name} must be {'>=' if low_inclusive else '>'} {low}, got {_describe(value)}")
    if high is not None and (number > high or (not high_inclusive and number == high)):
        raise ValueError(f"{name} must be {'<=' if high_inclusive else '<'} {high}, got {_describe(value)}")
    return number


def check_int(value, name: str, *, low: int | None = None, high: int | None = None) -> int:
    """Validate an integer (Python or NumPy; ``bool`` and floats such as ``3.0`` refused) in
    ``[low, high]`` and return it as ``int``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise ValueError(f"{name} must be an integer, got {_describe(value)}")
    number = int(value)
    if low is not None and number < low:
        raise ValueError(f"{name} must be >= {low}, got {_describe(value)}")
    if high is not None and number > high:
        raise ValueError(f"{name} must be <= {high}, got {_describe(value)}")
    return number


def check_positive_int(value, name: str, maximum: int | None = None) -> int:
    """Validate an integer ``>= 1`` (and ``<= maximum`` when given: sizes are checked before
    anything is allocated)."""
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, (numbers.Integral, np.integer))
        or value < 1
    ):
        raise ValueError(f"{name} must be a positive integer, got {_describe(value)}")
    return check_int(value, name, high=maximum)


MAX_ITERATION = 2**53
"""Largest accepted iteration index ``k``: every integer up to it is exact in float64, so the
step-size schedules ``β/(k + 1)^q`` are computed without rounding ``k``."""


def check_iteration(value, name: str = "k") -> int:
    """Validate an iteration index: an integer in ``[0, MAX_ITERATION]``."""
    return check_int(value, name, low=0, high=MAX_ITERATION)


MAX_SOLVER_ITERATIONS = 10**7
"""Largest accepted iteration cap of an iterative solver (Frank–Wolfe, gradient projection):
a bound on the time a call can take, not only on its result."""

MAX_SEED = 2**63 - 1
"""Largest accepted seed."""

MAX_LEGACY_SEED = 2**32 - 1
"""Largest seed of libraries that seed NumPy's legacy ``RandomState`` (Stable-Baselines3)."""


def check_seed(value, name: str = "seed", *, high: int = MAX_SEED) -> int:
    """Validate a seed: a non-negative integer (Python or NumPy) up to ``high`` (default
    ``2**63 − 1``; :data:`MAX_LEGACY_SEED` where Stable-Baselines3 is seeded); returns a Python
    ``int`` (gymnasium's seeding refuses NumPy integers)."""
    return check_int(value, name, low=0, high=high)


def as_generator(seed, name: str = "seed") -> np.random.Generator:
    """A ``numpy.random.Generator``: ``seed`` itself if it is one, else ``default_rng(seed)``
    for a non-negative integer seed. ``None`` is refused: every random draw in the project is
    reproducible from an explicit seed."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(check_seed(seed, name))


def check_generator_state(rng: np.random.Generator, state, name: str = "rng") -> dict:
    """``state`` if it is a valid state of ``rng``'s bit generator (tried on a scratch copy,
    so that ``rng`` is untouched, and read back: a value NumPy would silently convert, such as
    ``has_uint32 = 1.5``, is refused); ``ValueError`` naming ``name`` otherwise."""
    scratch = type(rng.bit_generator)()
    try:
        scratch.state = state
    except (TypeError, ValueError, KeyError, OverflowError) as error:
        raise ValueError(
            f"{name} is not a state of a {type(rng.bit_generator).__name__} generator: {error}"
        ) from None
    if scratch.state != state:
        raise ValueError(
            f"{name} is not a state of a {type(rng.bit_generator).__name__} generator: {state!r}"[:300]
        )
    return state


def check_bool(value, name: str) -> bool:
    """Validate a boolean flag (``True``/``False`` or a NumPy bool); strings such as ``"no"``
    and numbers are refused."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {_describe(value)}")
    return bool(value)


def check_choice(value, name: str, choices) -> str:
    """Validate that ``value`` is one of the strings ``choices``."""
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {_describe(value)}")
    return value


def check_bounds_pair(value, name: str) -> tuple[float, float]:
    """Validate a ``(low, high)`` pair of finite real numbers with ``low <= high``."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise ValueError(f"{name} must be a pair (low, high), got {_describe(value)}")
    low, high = check_scalar(value[0], f"{name}[0]"), check_scalar(value[1], f"{name}[1]")
    if low > high:
        raise ValueError(f"{name} must satisfy low <= high, got {_describe(value)}")
    return low, high


def build_config(config_class, params: dict, owner: str):
    """``config_class(**params)`` for a dataclass of parameters, with unknown keys refused by a
    ``ValueError`` that lists the known ones (instead of Python's ``TypeError``)."""
    import dataclasses

    known = [field.name for field in dataclasses.fields(config_class) if field.init]
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ValueError(f"{owner} got unknown parameters {unknown}; known parameters: {known}")
    return config_class(**params)
