"""Cleanup, a sequential social dilemma: the batched rules (:mod:`.game`), its env (:mod:`.env`),
the vector env for RL training (:mod:`.vector`), the plain-Python reference rules
(:mod:`.reference`) and the exact optimum of small maps (:mod:`.optimum`)."""
