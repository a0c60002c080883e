"""The exact optimal collective return of a small Cleanup map, by backward induction.

What is the most any policy can get? A centralised controller that sees the whole state and
chooses the joint action of every step maximises the expected collective return of an
episode of ``T = max_cycles`` steps. Cleanup (:mod:`incentive_envs.cleanup.game`) is a
finite Markov decision process, so that maximum is the value ``V_0(s_0)`` of the finite-horizon
Bellman recursion (Puterman 1994, *Markov Decision Processes: Discrete Stochastic Dynamic
Programming*, Wiley, §4.5, backward induction):

``V_T ≡ 0,   V_t(s) = max_a [ r(s, a) + E V_{t+1}(s') ],   t = T − 1, …, 0,``

with ``r(s, a)`` the apples the joint action ``a`` eats. No policy (memoryless or not, learnt,
scripted or centralised) has a larger expected collective return: it is the ceiling against
which learners and incentive designers are measured.

The state
---------
``s = (waste bits, apple bits, set of agent cells)``: ``2^{n_river} · 2^{n_orchard} ·
C(H W, N)`` states. Agents are interchangeable for the collective return (the rules treat
them symmetrically), so the cells are an unordered set, indexed by its rank in the
combinatorial number system (colex order: ``Σ_k C(c_k, k + 1)`` over the sorted cells
``c_0 < c_1 < …``).

One backup
----------
The deterministic part of a step (moves, the cells the beams cover, the orchard cells
occupied) comes from :meth:`CleanupTask.transition` itself, for every set of cells and joint
action. The expectation over the step's randomness is exact and never enumerates outcomes:
the waste event mixes ``V_{t+1}`` over the clean river cells (each with probability
``waste_spawn_prob / #clean`` below depletion), and, because every empty unoccupied orchard
cell grows an apple independently with the same probability ``p(d)``, the expectation over
the ``2^{empty}`` growth outcomes factorises into one two-point mixing per orchard cell.

Cost: ``O(T · 6^N · #states)`` time; about five arrays of ``#states`` 8-byte numbers at once
(0.8 GB for ``7x7``), and ``T · #states`` policy entries more with ``keep_policy``. The
``7x7`` preset has 19.3 million states and 36 joint actions and takes about five minutes on
one core; the ``10x10`` preset (``2^40 · C(100, 3)`` states) is out of reach and refused.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from incentive_envs.cleanup.game import APPLE_REWARD, N_ACTIONS, CleanupParams, CleanupState, CleanupTask
from incentive_envs.validation import check_bool, check_int

MAX_STATES = 1 << 25
"""Largest number of states solved (33.5 million; the backup holds about five arrays of that
many 8-byte numbers at once: 1.3 GB)."""

MAX_STATE_ACTIONS = 1 << 30
"""Largest number of state × joint-action pairs per backup."""

MAX_BACKUPS = 1 << 36
"""Largest number of state × joint-action × step backups (the ``7x7`` preset needs 3.5e10)."""

MAX_POLICY_ENTRIES = 1 << 31
"""Largest policy table (``max_cycles × #states`` entries) kept with ``keep_policy=True``."""


def _bits(flags: np.ndarray) -> np.ndarray:
    """The integer whose bit ``k`` is ``flags[..., k]``."""
    return (flags.astype(np.int64) << np.arange(flags.shape[-1])).sum(axis=-1)


def _popcount(codes: np.ndarray) -> np.ndarray:
    """The number of set bits of each integer."""
    return np.array([bin(int(code)).count("1") for code in codes], dtype=np.int64)


class CleanupOptimum:
    """The optimal expected collective return of a Cleanup map and, optionally, the policy
    that attains it (module docstring).

    Parameters
    ----------
    params : CleanupParams
        The map; it must fit :data:`MAX_STATES`, :data:`MAX_STATE_ACTIONS` and
        :data:`MAX_BACKUPS` (and :data:`MAX_POLICY_ENTRIES` with ``keep_policy``).
    keep_policy : bool
        Keep the maximising joint action of every step and state (for :meth:`actions`).

    Attributes
    ----------
    value : float
        ``E V_0(s_0)``: the optimal expected collective return of an episode from reset,
        averaged over the initial waste cells (drawn uniformly by :meth:`CleanupTask.reset`).
    task : CleanupTask
        The batched rules of ``params``.
    n_states : int
        ``2^{n_river} · 2^{n_orchard} · C(H W, N)``.

    Raises
    ------
    ValueError
        If ``params`` is not :class:`CleanupParams`, ``keep_policy`` is not a bool, or the map,
        its horizon or its policy table exceed the limits.
    """

    def __init__(self, params: CleanupParams, *, keep_policy: bool = False):
        if not isinstance(params, CleanupParams):
            raise ValueError(f"params must be CleanupParams, got {type(params).__name__}")
        keep_policy = check_bool(keep_policy, "keep_policy")
        self.task = task = CleanupTask(params)
        n_agents, n_cells, horizon = task.n_agents, task.n_cells, task.max_steps
        n_river, n_orchard = task.river_cells.size, task.orchard_cells.size
        n_sets = math.comb(n_cells, n_agents)
        n_joint = N_ACTIONS**n_agents
        self.n_states = (1 << n_river) * (1 << n_orchard) * n_sets
        if self.n_states > MAX_STATES or self.n_states * n_joint > MAX_STATE_ACTIONS:
            raise ValueError(
                f"params describe a map too large for backward induction: {self.n_states:.3g} states "
                f"(2^{n_river} waste × 2^{n_orchard} apple configurations × C({n_cells}, {n_agents}) "
                f"agent cells) and {n_joint} joint actions; the limits are {MAX_STATES:.3g} states "
                f"and {MAX_STATE_ACTIONS:.3g} state-action pairs"
            )
        if horizon * self.n_states * n_joint > MAX_BACKUPS:
            raise ValueError(
                f"params.max_cycles = {horizon} is too long for this map: {horizon} steps × "
                f"{self.n_states:.3g} states × {n_joint} joint actions exceed {MAX_BACKUPS:.3g} backups"
            )
        if keep_policy and horizon * self.n_states > MAX_POLICY_ENTRIES:
            raise ValueError(
                f"keep_policy=True needs a table of params.max_cycles = {horizon} × {self.n_states:.3g} "
                f"states, more than {MAX_POLICY_ENTRIES:.3g} entries"
            )
        self._binomial = np.array(
            [[math.comb(n, k) for k in range(n_agents + 1)] for n in range(n_cells + 1)], dtype=np.int64
        )
        lexicographic = np.array(list(itertools.combinations(range(n_cells), n_agents)), dtype=np.int64)
        cell_sets = lexicographic[np.argsort(self._rank(lexicographic))]
        self._joint_actions = np.array(list(itertools.product(range(N_ACTIONS), repeat=n_agents)))
        self._policy = (
            np.empty((horizon, 1 << n_river, 1 << n_orchard, n_sets), dtype=np.min_scalar_type(n_joint - 1))
            if keep_policy
            else None
        )
        self.value = self._solve(cell_sets)

    def _rank(self, cells: np.ndarray) -> np.ndarray:
        """Colex rank ``Σ_k C(c_k, k + 1)`` of each row of sorted distinct cells ``(..., N)``."""
        return self._binomial[cells, np.arange(1, cells.shape[-1] + 1)].sum(axis=-1)

    def _step_tables(self, cell_sets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For every set of cells and joint action (of the agents in increasing cell order),
        from :meth:`CleanupTask.transition`: the rank of the set after the moves and the river
        cells the beams cover (a bit mask), both of shape ``(n_sets, n_joint)``."""
        task = self.task
        n_sets, n_river, n_orchard = cell_sets.shape[0], task.river_cells.size, task.orchard_cells.size
        state = task.make_state(
            cell_sets, np.zeros((n_sets, n_river), dtype=bool), np.zeros((n_sets, n_orchard), dtype=bool)
        )
        noise = np.zeros((n_sets, n_orchard + 1 + n_river))
        next_sets, beams = [], []
        for joint in self._joint_actions:
            actions = np.broadcast_to(joint, cell_sets.shape)
            positions = task.transition(state, actions, noise)[0].positions
            cleaners = (actions == task.prosocial_action)[:, :, None]
            next_sets.append(self._rank(np.sort(positions, axis=1)))
            beams.append(_bits((task.beam[positions] & cleaners).any(axis=1)))
        return np.stack(next_sets, axis=1), np.stack(beams, axis=1)

    def _solve(self, cell_sets: np.ndarray) -> float:
        """Backward induction (module docstring); fills the policy table if kept.

        With ``w`` the waste after cleaning, ``A`` the apples after eating and ``S`` the cells
        after the moves, one backup is ``Q_t(s, a) = r + E_{w', A'} V_{t+1}(w', A', S)``, where
        the waste event and the growth of each empty cell outside ``S`` are independent, so

        ``E = Π_{j ∉ A ∪ S} M_j · [ (1 − q) V(w, ·) + q / #clean(w) · Σ_{c clean} V(w + c, ·) ]``

        with ``q = waste_spawn_prob`` below depletion (else 0) and ``M_j`` the mixing
        ``(1 − p(w)) f(A) + p(w) f(A + j)`` of orchard cell ``j``.
        """
        task, params = self.task, self.task.params
        n_river, n_orchard, n_sets = task.river_cells.size, task.orchard_cells.size, cell_sets.shape[0]
        next_set, beam = self._step_tables(cell_sets)
        slots = task.orchard_slot[cell_sets]
        set_occupies = _bits((slots[:, :, None] == np.arange(n_orchard)).any(axis=1))
        waste_codes, apple_codes = np.arange(1 << n_river), np.arange(1 << n_orchard)
        n_waste, n_apples = _popcount(waste_codes), _popcount(apple_codes)
        share = n_waste / n_river
        growth = task.regrowth_probability(share)
        spawns = task.waste_spreads(share)
        spawn_prob = params.waste_spawn_prob
        value = np.zeros((1 << n_river, 1 << n_orchard, n_sets))
        gathered = np.empty_like(value)
        for step in reversed(range(task.max_steps)):
            # E over the waste event, indexed by the waste after cleaning
            spread = np.zeros_like(value)
            for cell in range(n_river):
                clean = (waste_codes >> cell) & 1 == 0
                spread[clean] += value[waste_codes[clean] | (1 << cell)]
            n_clean = np.maximum(n_river - n_waste, 1)[:, None, None]
            expected = np.where(
                spawns[:, None, None], (1 - spawn_prob) * value + spawn_prob * spread / n_clean, value
            )
            del spread
            # E over apple growth: one two-point mixing per empty orchard cell outside the set
            for slot in range(n_orchard):
                empty = apple_codes[(apple_codes >> slot) & 1 == 0]
                free = (set_occupies >> slot) & 1 == 0
                mixed = (1 - growth)[:, None, None] * expected[:, empty] + growth[:, None, None] * expected[
                    :, empty | (1 << slot)
                ]
                expected[:, empty] = np.where(free, mixed, expected[:, empty])
            expected = expected.ravel()
            best = np.full(value.shape, -np.inf)
            choice = None if self._policy is None else np.zeros(value.shape, dtype=self._policy.dtype)
            for joint in range(len(self._joint_actions)):
                eats = set_occupies[next_set[:, joint]]
                waste_after = waste_codes[:, None] & ~beam[None, :, joint]
                apples_after = apple_codes[:, None] & ~eats[None]
                index = ((waste_after << n_orchard) * n_sets + next_set[:, joint])[:, None, :] + (
                    apples_after * n_sets
                )[None]
                np.take(expected, index, out=gathered, mode="clip")
                gathered += APPLE_REWARD * n_apples[apple_codes[:, None] & eats[None]][None]
                if choice is not None:
                    choice[gathered > best] = joint
                np.maximum(best, gathered, out=best)
            value = best
            if self._policy is not None:
                self._policy[step] = choice
        start = self._rank(np.sort(task.start_cells)[None])[0]
        initial = n_waste == task.n_initial_waste
        return float(value[initial, 0, start].mean())

    def actions(self, step: int, state: CleanupState) -> np.ndarray:
        """The optimal joint action of every game of ``state`` at step ``step``.

        The kept policy is indexed by the agents in increasing cell order (the rules do not
        depend on the agents' order); the actions are returned in the state's agent order. Ties
        between joint actions go to the first in ``itertools.product`` order.

        Parameters
        ----------
        step : int
            The step of the episode, ``0 <= step < max_cycles``.
        state : CleanupState
            ``B`` games of this map.

        Returns
        -------
        ndarray of int64, shape (B, N)

        Raises
        ------
        ValueError
            If the policy was not kept, or on a bad ``step`` or ``state``.
        """
        if self._policy is None:
            raise ValueError("actions needs the policy: build CleanupOptimum with keep_policy=True")
        step = check_int(step, "step", low=0, high=self.task.max_steps - 1)
        if not isinstance(state, CleanupState):
            raise ValueError(f"state must be a CleanupState, got {type(state).__name__}")
        state = self.task.make_state(state.positions, state.waste, state.apples)
        order = np.argsort(state.positions, axis=1)
        ranks = self._rank(np.take_along_axis(state.positions, order, axis=1))
        joint = self._policy[step, _bits(state.waste), _bits(state.apples), ranks]
        actions = np.empty_like(state.positions)
        np.put_along_axis(actions, order, self._joint_actions[joint], axis=1)
        return actions
