"""Stable learner steps from the model: the power-iteration Jacobian norm."""

import numpy as np
import pytest

from agents import jacobian_norm
from incentive_envs import CournotGame, CournotParams


@pytest.mark.parametrize("n,k,gamma", [(1, 0.0, 1.0), (7, 2.0, 0.5), (100, 0.0, 1.0), (300, 3.5, 2.0)])
def test_jacobian_norm_equals_the_largest_eigenvalue_of_cournot(n, k, gamma):
    # ∂v/∂a = −γ(I + 11ᵀ) − kI has eigenvalues −(γ + k) and −(γ(n + 1) + k)
    game = CournotGame(CournotParams.paper(n=n, k=k, gamma=gamma))
    rng = np.random.default_rng(n)
    x = rng.uniform(0, 1, n)
    norm = jacobian_norm(game, x, np.zeros(n))
    assert norm == pytest.approx(gamma * (n + 1) + k, rel=1e-8)
    assert norm == pytest.approx(np.linalg.norm(game.jacobian_x(x, np.zeros(n)), 2), rel=1e-8)
