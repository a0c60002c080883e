"""Cleanup, a sequential social dilemma: the batched rules (:mod:`.game`), its env (:mod:`.env`),
the vector env for RL training (:mod:`.vector`) and the plain-Python reference rules
(:mod:`.reference`)."""
