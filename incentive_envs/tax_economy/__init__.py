"""Tax economy: the math (:mod:`.game`), its env (:mod:`.env`) and a torch mirror (:mod:`.torch_model`)."""

from incentive_envs.tax_economy.game import TaxEconomyGame, TaxEconomyParams

__all__ = ["TaxEconomyGame", "TaxEconomyParams"]
