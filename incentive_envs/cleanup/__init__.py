"""Cleanup, a sequential social dilemma: the rules (:mod:`.game`), its env (:mod:`.env`) and the
vector env for RL training (:mod:`.vector`)."""
