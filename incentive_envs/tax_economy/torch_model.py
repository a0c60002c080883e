"""A differentiable torch mirror of the tax economy's coin, utility and objective.

The meta-gradient incentive designer (Yang, J., Wang, E., Trivedi, R., Zhao, T. & Zha, H.
(2021), "Adaptive incentive design with multi-agent meta-gradient reinforcement learning",
arXiv:2112.10859) differentiates the planner's objective through the workers' policy updates,
so it needs the formulas of :mod:`incentive_envs.tax_economy.game` as torch operations:
the schedule ``τ_θ(z) = Σ_b θ_b clip(z − c_b, 0, w_b)``, coin ``c = e + z − τ_θ(z) + T``,
utility ``φ(c) − κ l`` and ``equality × productivity = Σ_i ω_i c_i`` (rank weights of the
sorted coin, so autograd yields the same superdifferential element as the numpy gradients).
The tests check that every value and gradient agrees with the numpy model. This module imports
torch; nothing else in :mod:`incentive_envs` does.
"""

from __future__ import annotations

import numpy as np
import torch

from incentive_envs.tax_economy.game import TaxEconomyParams


class TorchTaxEconomy:
    """The tax economy's formulas on float64 tensors (``labour`` and ``rates`` may require grad).

    Parameters
    ----------
    params : TaxEconomyParams
        The instance (skills, cutoffs, utility parameters).
    """

    def __init__(self, params: TaxEconomyParams):
        if not isinstance(params, TaxEconomyParams):
            raise ValueError(f"params must be TaxEconomyParams, got {type(params).__name__}")
        self.params = params
        self.skill, self.cutoffs, self.widths = (
            torch.tensor(np.array(array, dtype=np.float64))
            for array in (params.skill, params.cutoffs, params.widths)
        )

    def tax_liability(self, income: torch.Tensor, rates: torch.Tensor) -> torch.Tensor:
        """``τ_θ(z)`` for incomes of any shape ``(..., )``."""
        shares = torch.minimum((income.unsqueeze(-1) - self.cutoffs).clamp(min=0.0), self.widths)
        return shares @ rates

    def coin(self, labour: torch.Tensor, rates: torch.Tensor, lump_sum=None):
        """``c = e + z − τ_θ(z) + T`` for labour ``(..., n)`` (a batch of economies along the
        leading axes); ``T`` defaults to each economy's revenue ``mean τ_θ(z)`` over its ``n``
        workers (the budget identity, differentiated through); pass a fixed ``lump_sum`` (a
        number or a tensor) for the price-taking view of one worker."""
        income = self.skill * labour
        tax = self.tax_liability(income, rates)
        transfer = (
            tax.mean(-1, keepdim=True) if lump_sum is None else torch.as_tensor(lump_sum, dtype=income.dtype)
        )
        return self.params.endowment + income - tax + transfer

    def utility(self, labour: torch.Tensor, rates: torch.Tensor, lump_sum=None):
        """``u_i = φ(c_i) − κ l_i`` with ``φ(c) = (c^{1−η} − 1)/(1 − η)``."""
        eta = self.params.eta
        coin = self.coin(labour, rates, lump_sum)
        return (coin ** (1.0 - eta) - 1.0) / (1.0 - eta) - self.params.labour_cost * labour

    @staticmethod
    def equality_times_productivity(coin: torch.Tensor) -> torch.Tensor:
        """``Σ_r 2(n − r)/(n − 1) c_(r)`` over the ascending coin ``c_(1) <= … <= c_(n)``."""
        n = coin.shape[-1]
        ordered = torch.sort(coin, dim=-1, stable=True).values
        rank = torch.arange(1, n + 1, dtype=coin.dtype, device=coin.device)
        return ordered @ (2.0 * (n - rank) / (n - 1))
