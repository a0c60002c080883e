"""A straightforward per-game Python implementation of Cleanup's rules (module docstring of
:mod:`incentive_envs.cleanup.game`), cell by cell and agent by agent.

It is the naive reference of the throughput benchmark (``scripts/cleanup.py`` steps ``B``
games with it in a Python loop) and an independent check of the batched core in the tests:
fed the same row of noise, :meth:`ReferenceCleanup.step` gives the same next game as
:meth:`~incentive_envs.cleanup.game.CleanupTask.transition`. It shares nothing with the
batched code but the parameters and the order of the noise (orchard and river cells in
row-major order).
"""

from __future__ import annotations

from collections.abc import Sequence

from incentive_envs.cleanup.game import APPLE_REWARD, CLEAN, MOVES, CleanupParams

Cell = tuple[int, int]


class ReferenceCleanup:
    """One Cleanup game at a time, in plain Python (module docstring).

    Parameters
    ----------
    params : CleanupParams

    Attributes
    ----------
    river, orchard : list of (row, column)
        In row-major order, the order of the noise.
    """

    def __init__(self, params: CleanupParams):
        self.params = params
        cells = [(r, c) for r in range(params.height) for c in range(params.width)]
        self.river = [(r, c) for r, c in cells if c < params.river_width]
        self.orchard = [(r, c) for r, c in cells if c >= params.width - params.orchard_width]

    def step(
        self,
        positions: list[Cell],
        waste: set[Cell],
        apples: set[Cell],
        actions: Sequence[int],
        noise: Sequence[float],
    ) -> tuple[list[Cell], set[Cell], set[Cell], list[float], list[int]]:
        """One step of one game: ``(positions, waste, apples, rewards, cleaned)``.

        Parameters
        ----------
        positions : list of (row, column)
            Each agent's cell.
        waste, apples : set of (row, column)
            River cells with waste, orchard cells with an apple.
        actions : sequence of int
            Each agent's action.
        noise : sequence of float
            One row of :meth:`~incentive_envs.cleanup.game.CleanupTask.draw_noise`.
        """
        p = self.params
        targets = []
        for (r, c), action in zip(positions, actions):
            dr, dc = MOVES[action]
            inside = 0 <= r + dr < p.height and 0 <= c + dc < p.width
            targets.append((r + dr, c + dc) if inside else (r, c))
        moved = []
        for i, target in enumerate(targets):
            blocked = any(
                j != i and (targets[j] == target or positions[j] == target) for j in range(len(positions))
            )
            moved.append(positions[i] if blocked else target)
        cleaned, hit = [], set()
        for (r, c), action in zip(moved, actions):
            count = 0
            if action == CLEAN:
                for cell in self.river:
                    if 1 <= c - cell[1] <= p.beam_length and abs(r - cell[0]) <= p.beam_radius:
                        if cell in waste:
                            count += 1
                        hit.add(cell)
            cleaned.append(count)
        waste = waste - hit
        rewards = []
        apples = set(apples)
        for cell in moved:
            if cell in apples:
                rewards.append(APPLE_REWARD)
                apples.remove(cell)
            else:
                rewards.append(0.0)
        share = len(waste) / len(self.river)
        growth = p.apple_respawn_prob * min(
            1.0, max(0.0, (p.depletion_threshold - share) / (p.depletion_threshold - p.restoration_threshold))
        )
        for k, cell in enumerate(self.orchard):
            if cell not in apples and cell not in moved and noise[k] < growth:
                apples.add(cell)
        clean = [
            (noise[len(self.orchard) + 1 + k], cell) for k, cell in enumerate(self.river) if cell not in waste
        ]
        if share < p.depletion_threshold and noise[len(self.orchard)] < p.waste_spawn_prob and clean:
            waste = waste | {max(clean)[1]}
        return moved, waste, apples, rewards, cleaned
