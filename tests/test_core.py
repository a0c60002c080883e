"""The protocol's sets and validation helpers."""

import numpy as np
import pytest

from incentive_envs.core import IncentiveSet, StrategySet
from incentive_envs.validation import as_finite_array, check_scalar


def test_strategy_set_layout():
    s = StrategySet("simplex", (2, 3, 1))
    assert s.dim == 6 and s.n_agents == 3
    assert s.agent_slices == [slice(0, 2), slice(2, 5), slice(5, 6)]
    np.testing.assert_array_equal(s.agent_of_coordinate, [0, 0, 1, 1, 1, 2])
    np.testing.assert_allclose(s.block_sum(np.arange(6.0)), [1.0, 9.0, 5.0])
    np.testing.assert_allclose(s.uniform_point(), [0.5, 0.5, 1 / 3, 1 / 3, 1 / 3, 1.0])
    assert s.contains(s.uniform_point()) and not s.contains(np.ones(6)) and not s.contains(np.zeros(5))


def test_box_projection_and_contains():
    s = StrategySet("box", (1, 1), np.array([0.0, -1.0]), np.array([1.0, np.inf]))
    np.testing.assert_allclose(s.project(np.array([2.0, -3.0])), [1.0, -1.0])
    assert s.contains(np.array([0.5, 1e9])) and not s.contains(np.array([np.nan, 0.0]))
    np.testing.assert_allclose(s.uniform_point(), [0.0, -1.0])


@pytest.mark.parametrize(
    "args, match",
    [
        (("cube", (1,)), "kind"),
        (("box", (1,)), "lower and upper"),
        (("box", (1,), np.ones(1), np.zeros(1)), "lower <= upper"),
        (("simplex", (2,), np.zeros(2), np.ones(2)), "only meaningful"),
        (("simplex", (0,)), "agent_sizes"),
        (("simplex", ()), "agent_sizes"),
    ],
)
def test_strategy_set_errors(args, match):
    with pytest.raises(ValueError, match=match):
        StrategySet(*args)


def test_incentive_set_validation_names_the_argument():
    theta_set = IncentiveSet(np.zeros(3), np.ones(3))
    np.testing.assert_allclose(theta_set.project(np.array([-1.0, 0.5, 2.0])), [0.0, 0.5, 1.0])
    with pytest.raises(ValueError, match=r"tolls\[2\] = 2.0 is outside"):
        theta_set.validate(np.array([0.0, 0.5, 2.0]), "tolls")
    with pytest.raises(ValueError, match="tolls must have shape"):
        theta_set.validate(np.zeros(2), "tolls")
    with pytest.raises(ValueError, match="tolls must be finite"):
        theta_set.validate(np.array([0.0, np.nan, 0.0]), "tolls")
    with pytest.raises(ValueError, match="finite"):
        IncentiveSet(np.zeros(2), np.array([1.0, np.inf]))
    with pytest.raises(ValueError, match="lower <= upper"):
        IncentiveSet(np.ones(2), np.zeros(2))


def test_scalar_and_array_helpers():
    assert check_scalar(np.float32(2.5), "beta", low=0.0) == 2.5
    for refused in ("2.5", True, 1 + 0j, None):  # no coercion of strings, flags or complex numbers
        with pytest.raises(ValueError, match="beta must be a real number"):
            check_scalar(refused, "beta")
    with pytest.raises(ValueError, match="beta must be > 0"):
        check_scalar(0.0, "beta", low=0.0, low_inclusive=False)
    with pytest.raises(ValueError, match="beta must be <= 1"):
        check_scalar(2.0, "beta", high=1.0)
    with pytest.raises(ValueError, match="beta must be finite"):
        check_scalar(np.inf, "beta")
    with pytest.raises(ValueError, match="beta must be a real number"):
        check_scalar("fast", "beta")
    with pytest.raises(ValueError, match="x must be real numbers"):
        as_finite_array(["a"], "x")
    with pytest.raises(ValueError, match=r"flat indices \[1\]"):
        as_finite_array([0.0, np.inf], "x")
