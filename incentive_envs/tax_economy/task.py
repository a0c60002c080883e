"""The tax economy as a batched episodic task, for policy-gradient workers and the designers
that steer them (the meta-gradient designer, the dual-RL planner).

Yang, J., Wang, E., Trivedi, R., Zhao, T. & Zha, H. (2021), "Adaptive incentive design with
multi-agent meta-gradient reinforcement learning" (arXiv:2112.10859), §5.3, and Zheng, S.,
Trott, A., Srinivasa, S., Parkes, D. C. & Socher, R. (2022), "The AI Economist", Science
Advances 8(18), eabk2607, let reinforcement-learning workers choose labour under a planner's
tax schedule. :class:`TaxEconomyTask` is that setting on the exact economy of
:mod:`incentive_envs.tax_economy.game`:

* an episode is one tax period of the ``n`` workers of a :class:`~.game.TaxEconomyGame`
  (``max_steps = 1``); the ``B`` episodes of a batch are independent economies with the same
  skills, each with its own lump sum ``T_b = mean_i τ_θ(z_bi)``;
* worker ``i``'s action is a labour level ``l ∈ {0, L̄/(K−1), …, L̄}`` (``K`` =
  ``labour_levels``), its env reward its utility ``φ(c_bi) − κ l_bi`` of the realised coin
  ``c_bi = e + z_bi − τ_θ(z_bi) + T_b``;
* every worker observes the rates in force, ``θ ∈ [0, 1]^B`` (so a policy can condition on
  the schedule the RL planner changes); the global state is the same vector;
* the incentive is not a bonus but the schedule itself (:class:`~incentive_envs.episodic.ScheduleTask`):
  :meth:`set_schedule` changes the rates that :meth:`step` applies, and
  :meth:`schedule_rewards` / :meth:`schedule_objective` recompute a played batch's rewards and
  the planner's objective (equality × productivity of each episode's coin) as torch functions
  of the rates, which the meta-gradient designer differentiates;
* the designer's per-step features are the workers' labour shares ``l/L̄`` (``F = n``), the
  prosocial action is full labour and the prosocial events are the labour shares (work is what
  creates the coin the schedule redistributes).

All the per-episode arithmetic is the game's vectorised numpy (``(B, n)`` arrays, no loop over
workers or episodes).
"""

from __future__ import annotations

import numpy as np

from incentive_envs.episodic import MAX_BATCH, check_actions, check_generator
from incentive_envs.tax_economy.game import (
    TaxEconomyGame,
    bracket_index,
    equality_times_productivity,
    free_market_rates,
    tax_at_cutoffs,
)
from incentive_envs.validation import check_int, check_positive_int, check_scalar

MAX_LABOUR_LEVELS = 10_001
"""Largest accepted number of labour levels per worker."""


class TaxEconomyTask:
    """The tax economy as an :class:`~incentive_envs.episodic.ScheduleTask` (module docstring).

    Parameters
    ----------
    game : TaxEconomyGame
        The economy (skills, cutoffs, utility).
    labour_levels : int
        ``K >= 2`` evenly spaced labour levels from 0 to ``L̄`` (default 21: every 5 hours).
    schedule : array_like, optional
        The rates in force at the start (default: no tax).

    Attributes
    ----------
    schedule : ndarray, shape (B,)
        The rates :meth:`step` applies (set with :meth:`set_schedule`).
    labour : ndarray, shape (K,)
        The labour of each action.
    """

    max_steps = 1
    incentive_feature_size: int
    observation_shape: tuple[int, ...]

    def __init__(self, game: TaxEconomyGame, labour_levels: int = 21, schedule=None):
        if not isinstance(game, TaxEconomyGame):
            raise ValueError(f"game must be a TaxEconomyGame, got {type(game).__name__}")
        self.game = game
        p = game.params
        self.n_agents = p.n
        self.n_actions = check_int(labour_levels, "labour_levels", low=2, high=MAX_LABOUR_LEVELS)
        self.labour = np.linspace(0.0, p.max_labour, self.n_actions)
        self.prosocial_action = self.n_actions - 1
        self.schedule_dim = p.n_brackets
        self.observation_shape = (p.n_brackets,)
        self.incentive_feature_size = p.n
        self.set_schedule(free_market_rates(game) if schedule is None else schedule)
        free_market = game._equilibrium_state(free_market_rates(game))
        self.reward_scale = float(abs(np.sum(game._rewards(free_market.labour, free_market_rates(game)))))
        self.objective_scale = equality_times_productivity(free_market.coin)
        """Equality × productivity at the free-market equilibrium: normalises planner rewards."""
        self._torch_model = None

    def __repr__(self) -> str:
        return f"TaxEconomyTask({self.game!r}, labour_levels={self.n_actions})"

    # -- the schedule ----------------------------------------------------------------------
    def set_schedule(self, rates) -> None:
        """Apply the marginal rates ``rates ∈ [0, 1]^B`` from the next :meth:`step` on."""
        self.schedule = self.game.validate_incentive(rates, "rates")

    # -- EpisodicTask ------------------------------------------------------------------------
    def reset(self, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        """``B`` economies before the period: the state is the rates in force, ``(B, B_br)``."""
        check_generator(rng)
        batch_size = check_positive_int(batch_size, "batch_size", MAX_BATCH)
        return np.broadcast_to(self.schedule, (batch_size, self.schedule_dim)).copy()

    def observe(self, state: np.ndarray) -> np.ndarray:
        """Every worker sees the rates: ``(B, n, B_br)`` float32."""
        return np.broadcast_to(
            state[:, None].astype(np.float32), (state.shape[0], self.n_agents, state.shape[1])
        ).copy()

    def step(self, state: np.ndarray, actions: np.ndarray, rng: np.random.Generator):
        """One tax period of every economy: utilities ``(B, n)`` under the rates of ``state``;
        every episode ends (``done`` all true). Deterministic (``rng`` is not drawn from)."""
        check_generator(rng)
        actions = check_actions(actions, state.shape[0], self.n_agents, self.n_actions)
        labour = self.labour[actions]
        coin = self.coin(labour, state)
        rewards = self.game._utility_of_coin(coin) - self.game.params.labour_cost * labour
        return state.copy(), rewards, np.ones(state.shape[0], dtype=bool)

    def coin(self, labour: np.ndarray, rates: np.ndarray) -> np.ndarray:
        """Realised coin ``(B, n)`` of labour ``(B, n)`` under per-episode rates ``(B, B_br)``,
        each episode's revenue returned to its own workers: on bracket ``k`` the tax is
        ``τ_θ(c_k) − θ_k c_k + θ_k z``."""
        p = self.game.params
        income = p.skill * labour
        k = bracket_index(income, p.cutoffs)
        intercept = tax_at_cutoffs(rates, p.cutoffs) - rates * p.cutoffs
        tax = np.take_along_axis(intercept, k, 1) + np.take_along_axis(rates, k, 1) * income
        return p.endowment + income - tax + tax.mean(axis=1, keepdims=True)

    def incentive_features(self, state: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """The workers' labour shares ``l/L̄``, shape ``(B, n)`` float32."""
        return (self.labour[actions] / self.game.params.max_labour).astype(np.float32)

    def prosocial_events(self, state: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Each worker's labour share ``l/L̄`` (full labour is the prosocial action), ``(B, n)``."""
        return self.labour[actions] / self.game.params.max_labour

    def global_state(self, state: np.ndarray) -> np.ndarray:
        """The rates in force, ``(B, B_br)`` float32 in ``[0, 1]``."""
        return state.astype(np.float32)

    # -- ScheduleTask ------------------------------------------------------------------------
    def objective(self, rollout) -> np.ndarray:
        """Equality × productivity of every episode of a played batch, ``(B,)``, under the rates
        it was played with (read back from the observations, hence rounded to float32)."""
        labour = self.labour[rollout.actions[:, 0]]
        return np.sort(self.coin(labour, rollout.observations[:, 0, 0].astype(np.float64)), axis=1) @ (
            _order_weights(self.n_agents)
        )

    def _torch(self):
        if self._torch_model is None:
            from incentive_envs.tax_economy.torch_model import TorchTaxEconomy

            self._torch_model = TorchTaxEconomy(self.game.params)
        return self._torch_model

    def schedule_rewards(self, rollout, rates):
        """The workers' utilities on a played batch under ``rates`` (a torch tensor ``(B_br,)``,
        possibly with a graph), shape ``(B, 1, n)``: the rewards they would have had."""
        import torch

        model = self._torch()
        labour = torch.as_tensor(self.labour[rollout.actions], dtype=rates.dtype)
        return model.utility(labour, rates)

    def schedule_objective(self, rollout, rates):
        """Equality × productivity of every episode of a played batch under ``rates`` (torch,
        differentiable in the rates at fixed labour), shape ``(B,)``."""
        import torch

        model = self._torch()
        labour = torch.as_tensor(self.labour[rollout.actions[:, 0]], dtype=rates.dtype)
        return model.equality_times_productivity(model.coin(labour, rates))

    def soft_response_objective(self, rates, temperature: float):
        """Equality × productivity at the workers' soft-best-response equilibrium of ``rates``
        (a torch tensor ``(B_br,)``, possibly with a graph): a differentiable scalar.

        An entropy-regularised policy-gradient worker (softmax policy, entropy weight ``c`` =
        ``temperature``) on this one-step task ascends ``E_π[u_i] + c H(π)``; its fixed point is
        the soft best response ``π_i(a) ∝ exp(u_i(l_a; θ, T)/c)`` (the maximiser of that
        objective over the simplex), with ``u_i`` the worker's utility at labour ``l_a`` given the
        lump sum ``T``. ``T`` is consistent with the workers' expected labour
        ``l̄_i = Σ_a π_i(a) l_a``: ``T = g(T) = mean_i τ_θ(s_i l̄_i)``. ``g`` decreases in ``T``
        (a larger transfer lowers the marginal utility of coin, hence labour and revenue), so
        ``g(T) − T`` has one root in ``[0, mean_i τ_θ(s_i L̄)]``, found by Brent's method. The
        returned objective is evaluated at the expected labour, ``Σ_r ω_r c_(r)`` of
        ``c = e + s l̄ − τ_θ(s l̄) + T``.

        The gradient with respect to ``rates`` is exact: the root is differentiated by the
        implicit function theorem, ``dT/dθ = ∂g/∂θ / (1 − ∂g/∂T)``, through the surrogate
        ``T* + (g(T*, θ) − T*)/(1 − ∂g/∂T)`` (value ``T*``, denominator detached).
        """
        import scipy.optimize
        import torch

        temperature = check_scalar(temperature, "temperature", low=0.0, low_inclusive=False)
        if not (isinstance(rates, torch.Tensor) and rates.dtype == torch.float64):
            raise ValueError(f"rates must be a float64 torch tensor, got {rates!r}")
        self.game.validate_incentive(rates.detach().numpy(), "rates")  # shape, finite, in [0, 1]
        model = self._torch()
        labour = torch.as_tensor(self.labour, dtype=rates.dtype)[:, None]

        def revenue(lump_sum, rates):
            utilities = model.utility(labour.expand(-1, self.n_agents), rates, lump_sum)  # (K, n)
            expected = torch.softmax(utilities / temperature, dim=0).T @ labour[:, 0]
            return model.tax_liability(model.skill * expected, rates).mean(), expected

        with torch.no_grad():
            fixed = rates.detach()
            highest = float(model.tax_liability(model.skill * self.game.params.max_labour, fixed).mean())
            if highest > 0.0:
                root = scipy.optimize.brentq(
                    lambda t: float(revenue(t, fixed)[0]) - t, 0.0, highest, xtol=1e-12, rtol=1e-14
                )
            else:
                root = 0.0
        lump_sum = torch.tensor(root, dtype=rates.dtype, requires_grad=True)
        consistent, _ = revenue(lump_sum, rates)
        (slope,) = torch.autograd.grad(consistent, lump_sum, retain_graph=True)
        implicit = lump_sum.detach() + (consistent - lump_sum.detach()) / (1.0 - slope)
        _, expected = revenue(implicit, rates)
        return model.equality_times_productivity(model.coin(expected, rates, implicit))


def _order_weights(n: int) -> np.ndarray:
    """``2(n − r)/(n − 1)`` for ranks ``r = 1 … n`` of the ascending coin."""
    return 2.0 * (n - np.arange(1, n + 1)) / (n - 1)
