"""Differentiable policy-gradient learners for any batched episodic task, in torch.

The followers of the incentive designers (:mod:`planners.meta_gradient`,
:mod:`planners.rl_planner`, :class:`FixedBonus`) and of the :class:`CollectiveReward`
reference play an :class:`~incentive_envs.episodic.EpisodicTask` — Escape Room, Cleanup — in
batches of ``B`` episodes. Each of the ``N`` agents has its own softmax policy over the
task's actions. Its input is its observation (flattened) followed, optionally, by the
one-hot time step ``t`` in ``0 … T−1``. The policy is linear in these features (with
one-hot inputs, a factored table) or a small tanh MLP; the ``N`` policies have independent
parameters (agents are distinguishable, which lets them break the symmetry of their start)
and are evaluated together, batched over agents, by one ``einsum`` per layer. (On
Cleanup's one-hot 7 × 7 grids, forward and backward over a rollout of 64 episodes of 50
steps took 21 ms for the linear policy, 29 ms for a 64-unit MLP and 68 ms for a small
convolution — 8 filters 3 × 3 and a linear head — on one core, so the flattened grid is the
input.)

Episodes are played by :meth:`PolicyGradientLearners.sample` through
:func:`~incentive_envs.episodic.play`; log-probabilities are recomputed from a rollout with
any parameters (:meth:`~PolicyGradientLearners.log_probs`), so the learning step

``θ_i' = θ_i + lr ∇_{θ_i} J_i(θ_i)``   (:meth:`~PolicyGradientLearners.updated`)

is a torch function of the rewards the agents were trained on: with
``create_graph=True`` it is differentiable with respect to incentives added to those
rewards (the meta-gradient of :mod:`planners.meta_gradient`). ``J_i`` is the REINFORCE
surrogate of agent ``i`` (Williams 1992, "Simple statistical gradient-following algorithms
for connectionist reinforcement learning", Machine Learning 8, eq. 11 with a baseline),

``J_i = (1/B) Σ_b Σ_t alive[b, t] log π_i(a_t^i | o_t^i) (G_t^i − β_t^i) + c H(π_i(· | o_t^i))``,

where ``G_t^i = Σ_{s >= t} γ^{s−t} r_s^i`` is agent ``i``'s discounted return-to-go (its
env reward plus any incentive; ``γ = discount``, 1 by default), ``β_t^i`` the optional
baseline (the mean of ``G_t^i`` over the episodes still running at ``t``) and ``c`` the
optional entropy coefficient. Its gradient is the usual estimate of ``∇_{θ_i}`` of agent
``i``'s expected discounted return (plus ``c`` times the entropy); dividing by ``B`` makes the
learning rate independent of the batch size.

Designers run iteration by iteration (:class:`IterativeDesigner`): ``iteration()`` plays one
batch, takes one learning step and returns that iteration's metrics; ``train(k)`` loops over
it; ``state_dict()``/``load_state_dict()`` checkpoint a run so that it resumes exactly.
:class:`FixedBonus` is the simplest designer: a constant bonus per prosocial event (zero: the
selfish baseline); :class:`CollectiveReward` makes the agents share the collective reward
equally (the aligned reference).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable

import numpy as np
import torch

from incentive_envs.episodic import EpisodicTask, Rollout, ScheduleTask, check_generator, play
from incentive_envs.validation import (
    as_finite_array,
    as_generator,
    check_bool,
    check_generator_state,
    check_int,
    check_positive_int,
    check_scalar,
)

Params = tuple[torch.Tensor, ...]
"""A learner's parameters: per layer a weight ``(N, in, out)`` and a bias ``(N, out)``."""

METRICS = ("welfare", "incentive_paid", "prosocial_share", "prosocial_events", "episodes")
"""The keys of every designer iteration's metrics (:meth:`IterativeDesigner.iteration`)."""


def returns_to_go(rewards: torch.Tensor, discount: float = 1.0) -> torch.Tensor:
    """``G_t = Σ_{s >= t} γ^{s−t} r_s`` along axis 1 of ``(B, T, ...)`` rewards."""
    if discount == 1.0:
        return rewards.flip(1).cumsum(1).flip(1)
    steps = rewards.shape[1]
    lags = torch.arange(steps, dtype=rewards.dtype)
    powers = torch.where(lags[None, :] >= lags[:, None], discount ** (lags[None, :] - lags[:, None]), 0.0)
    return torch.einsum("ts,bs...->bt...", powers, rewards)


def reinforce_surrogate(
    log_probs: torch.Tensor, returns: torch.Tensor, alive: torch.Tensor, baseline: bool
) -> torch.Tensor:
    """``(1/B) Σ_b Σ_t alive · log π · (G − β)`` per trailing index.

    Parameters
    ----------
    log_probs, returns : Tensor, shape (B, T, ...)
        Log-probabilities of the taken actions and the returns-to-go that weigh them.
    alive : Tensor, shape (B, T)
        1 where the step was played, 0 after the episode ended.
    baseline : bool
        Subtract ``β_t`` = the mean of ``G_t`` over the episodes alive at ``t``.

    Returns
    -------
    Tensor, shape (...)
    """
    mask = alive.reshape(*alive.shape, *([1] * (returns.ndim - 2)))
    if baseline:
        count = mask.sum(0).clamp(min=1.0)
        returns = returns - (returns * mask).sum(0) / count
    return (mask * log_probs * returns).sum((0, 1)) / returns.shape[0]


class PolicyGradientLearners:
    """``N`` independent softmax-policy REINFORCE learners on an episodic task (module docstring).

    Parameters
    ----------
    task : EpisodicTask
        The game (``N``, actions, observations, episode length ``T``).
    learning_rate : float
        ``lr > 0`` of the gradient-ascent step.
    hidden : tuple of int
        Hidden layer widths of each policy (tanh); ``()`` is a linear policy.
    baseline : bool
        Subtract the per-step mean return (see :func:`reinforce_surrogate`).
    entropy_coef : float
        ``c >= 0``, weight of the policy entropy in ``J_i``.
    discount : float
        ``γ`` in ``(0, 1]`` of the returns-to-go.
    time_features : bool
        Append the one-hot time step to the observation.
    init_scale : float
        Standard deviation of the initial weights (biases start at 0).
    seed : int or torch.Generator
        Seeds the initial weights.
    dtype : torch.dtype
        Of the parameters and of every tensor built from rollouts.

    Attributes
    ----------
    params : tuple of Tensor
        The current parameters (leaf tensors without gradient); see :data:`Params`.
    """

    def __init__(
        self,
        task: EpisodicTask,
        learning_rate: float,
        *,
        hidden: tuple[int, ...] = (),
        baseline: bool = True,
        entropy_coef: float = 0.0,
        discount: float = 1.0,
        time_features: bool = True,
        init_scale: float = 0.1,
        seed: int | torch.Generator = 0,
        dtype: torch.dtype = torch.float32,
    ):
        if not isinstance(task, EpisodicTask):
            raise ValueError(
                f"task must implement incentive_envs.episodic.EpisodicTask, got {type(task).__name__}"
            )
        self.task = task
        self.n_agents, self.n_actions, self.max_steps = task.n_agents, task.n_actions, task.max_steps
        self.learning_rate = check_scalar(learning_rate, "learning_rate", low=0.0, low_inclusive=False)
        self.hidden = tuple(check_positive_int(width, "hidden") for width in hidden)
        self.baseline = check_bool(baseline, "baseline")
        self.entropy_coef = check_scalar(entropy_coef, "entropy_coef", low=0.0)
        self.discount = check_scalar(discount, "discount", low=0.0, high=1.0, low_inclusive=False)
        self.time_features = check_bool(time_features, "time_features")
        init_scale = check_scalar(init_scale, "init_scale", low=0.0)
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
        self.dtype = dtype
        generator = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(seed)
        self.input_size = math.prod(task.observation_shape) + (self.max_steps if self.time_features else 0)
        widths = (self.input_size, *self.hidden, self.n_actions)
        params = []
        for fan_in, fan_out in zip(widths[:-1], widths[1:]):
            params.append(
                init_scale * torch.randn(self.n_agents, fan_in, fan_out, generator=generator, dtype=dtype)
            )
            params.append(torch.zeros(self.n_agents, fan_out, dtype=dtype))
        self.params: Params = tuple(params)

    # -- policy ------------------------------------------------------------------------------
    def features(self, observations: np.ndarray, steps) -> torch.Tensor:
        """Policy inputs ``(..., N, input_size)`` of observations ``(..., N, *observation_shape)``
        at time ``steps``: an int, or an int array that broadcasts against ``(..., N)``."""
        flat = observations.reshape(*observations.shape[: -len(self.task.observation_shape)], -1)
        if self.time_features:
            time = np.eye(self.max_steps, dtype=np.float32)[np.asarray(steps)]
            flat = np.concatenate((flat, np.broadcast_to(time, (*flat.shape[:-1], self.max_steps))), axis=-1)
        return torch.as_tensor(flat, dtype=self.dtype)

    def logits(self, params: Params, features: torch.Tensor) -> torch.Tensor:
        """Every agent's action logits, shape ``(*features.shape[:-1], n_actions)``, from
        per-agent features ``(..., N, input_size)``."""
        hidden = features
        for layer in range(0, len(params), 2):
            if layer:
                hidden = torch.tanh(hidden)
            hidden = torch.einsum("...nf,nfh->...nh", hidden, params[layer]) + params[layer + 1]
        return hidden

    def log_policy(self, params: Params, rollout: Rollout) -> torch.Tensor:
        """``log π_i(· | o_t^i)`` at every step of the rollout, shape (B, T, N, n_actions)."""
        self._check_rollout(rollout)
        steps = np.arange(rollout.max_steps)[:, None]
        return torch.log_softmax(self.logits(params, self.features(rollout.observations, steps)), dim=-1)

    def log_probs(self, params: Params, rollout: Rollout) -> torch.Tensor:
        """``log π_i(a_t^i | o_t^i)`` of the rollout's actions under ``params``, shape (B, T, N)."""
        log_policy = self.log_policy(params, rollout)
        return log_policy.gather(-1, torch.as_tensor(rollout.actions).unsqueeze(-1)).squeeze(-1)

    def sample(self, batch_size: int, rng: np.random.Generator, params: Params | None = None) -> Rollout:
        """Play ``batch_size`` episodes with actions sampled from the policies (no gradient).

        Parameters
        ----------
        batch_size : int
        rng : numpy.random.Generator
            Draws the actions (inverse CDF of the softmax probabilities) and the task's randomness.
        params : tuple of Tensor, optional
            Default: :attr:`params`.
        """
        check_generator(rng)
        params = self.params if params is None else params

        def choose(t: int, observations: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                probs = torch.softmax(self.logits(params, self.features(observations, t)), dim=-1)
            cumulative = np.cumsum(probs.double().numpy(), axis=-1)
            draws = rng.random(cumulative.shape[:-1])[..., None]
            return np.minimum((draws > cumulative).sum(-1), self.n_actions - 1).astype(np.int64)

        return play(self.task, choose, batch_size, rng)

    # -- learning ----------------------------------------------------------------------------
    def objective(self, params: Params, rollout: Rollout, rewards: torch.Tensor) -> torch.Tensor:
        """``J_i`` of every agent (module docstring), shape (N,).

        Parameters
        ----------
        params : tuple of Tensor
        rollout : Rollout
            Played with any policy; only its observations, actions and alive mask are used.
        rewards : Tensor, shape (B, T, N)
            Each agent's reward per step (env reward plus incentive); may carry a graph.
        """
        log_policy = self.log_policy(params, rollout)
        if tuple(rewards.shape) != rollout.actions.shape:
            raise ValueError(f"rewards must have shape {rollout.actions.shape}, got {tuple(rewards.shape)}")
        alive = torch.as_tensor(rollout.alive, dtype=self.dtype)
        taken = log_policy.gather(-1, torch.as_tensor(rollout.actions).unsqueeze(-1)).squeeze(-1)
        returns = returns_to_go(rewards * alive[..., None], self.discount)
        value = reinforce_surrogate(taken, returns, alive, self.baseline)
        if self.entropy_coef:
            entropy = -(log_policy.exp() * log_policy).sum(-1)
            value = value + self.entropy_coef * (alive[..., None] * entropy).sum((0, 1)) / rollout.batch_size
        return value

    def updated(
        self, params: Params, rollout: Rollout, rewards: torch.Tensor, create_graph: bool = False
    ) -> Params:
        """One gradient-ascent step of every agent: ``params + lr ∇_params Σ_i J_i``.

        ``J_i`` depends on agent ``i``'s parameter block only, so the gradient of the sum is
        each agent's own gradient. With ``create_graph=True`` the result stays a function of
        ``rewards`` (and of ``params``) for higher-order differentiation; otherwise it is
        detached.
        """
        params = tuple(p if p.requires_grad else p.detach().requires_grad_() for p in params)
        grads = torch.autograd.grad(
            self.objective(params, rollout, rewards).sum(), params, create_graph=create_graph
        )
        new = tuple(p + self.learning_rate * g for p, g in zip(params, grads))
        return new if create_graph else tuple(p.detach() for p in new)

    def step(self, rollout: Rollout, rewards: torch.Tensor | None = None) -> None:
        """Update :attr:`params` in place with one step on ``rewards`` (default: env rewards)."""
        if rewards is None:
            rewards = torch.as_tensor(rollout.env_rewards, dtype=self.dtype)
        self.params = self.updated(self.params, rollout, rewards.detach())

    def state_dict(self) -> dict:
        """The parameters (copies), for :meth:`load_state_dict`."""
        return {"params": [p.detach().clone() for p in self.params]}

    def load_state_dict(self, state: dict) -> None:
        """Restore parameters saved by :meth:`state_dict` (shapes and dtypes must match)."""
        saved = entry(state, "params", "learners state")
        if not isinstance(saved, (list, tuple)) or len(saved) != len(self.params):
            raise ValueError(f"learners state 'params' must be a list of {len(self.params)} tensors")
        for index, (new, old) in enumerate(zip(saved, self.params)):
            if not isinstance(new, torch.Tensor) or new.shape != old.shape or new.dtype != old.dtype:
                raise ValueError(
                    f"learners state 'params'[{index}] must be a {old.dtype} tensor of shape {tuple(old.shape)}"
                )
        self.params = tuple(p.detach().clone() for p in saved)

    def _check_rollout(self, rollout: Rollout) -> None:
        if not isinstance(rollout, Rollout):
            raise ValueError(f"rollout must be a Rollout, got {type(rollout).__name__}")
        if rollout.n_agents != self.n_agents or rollout.max_steps != self.max_steps:
            raise ValueError(
                f"rollout has {rollout.n_agents} agents and {rollout.max_steps} steps, "
                f"the learners {self.n_agents} and {self.max_steps}"
            )


def entry(state, key: str, what: str):
    """``state[key]`` of a checkpoint dict; ``ValueError`` naming ``what`` if it is missing."""
    if not isinstance(state, dict) or key not in state:
        raise ValueError(f"{what} must be a dict with key {key!r}")
    return state[key]


def generator_state(rng: np.random.Generator) -> dict:
    """A copy of a ``numpy.random.Generator``'s state (for checkpoints)."""
    return rng.bit_generator.state


def iteration_metrics(rollout: Rollout, task: EpisodicTask, paid_per_episode: float, episodes: int) -> dict:
    """The metrics of a designer iteration (:data:`METRICS`) from the batch the followers
    trained on; on a :class:`~incentive_envs.episodic.ScheduleTask` also ``"objective"`` (the
    task's planner objective per episode of the batch) and ``"rates"`` (the schedule it was
    played under)."""
    metrics = {
        "welfare": float(rollout.welfare().mean()),
        "incentive_paid": float(paid_per_episode),
        "prosocial_share": rollout.action_share(task.prosocial_action),
        "prosocial_events": float(rollout.prosocial.sum()) / rollout.batch_size,
        "episodes": int(episodes),
    }
    if isinstance(task, ScheduleTask):
        metrics["objective"] = float(task.objective(rollout).mean())
        metrics["rates"] = rollout.observations[0, 0, 0].astype(np.float64).tolist()
    return metrics


class IterativeDesigner(abc.ABC):
    """An incentive designer and its followers, run one learning iteration at a time.

    Attributes
    ----------
    learners : PolicyGradientLearners
        The followers, trained in place.
    episodes : int
        Follower episodes played so far.
    """

    learners: PolicyGradientLearners
    episodes: int

    @abc.abstractmethod
    def iteration(self) -> dict:
        """One follower learning step under the designer's incentive (and one designer update).

        Returns
        -------
        dict
            :data:`METRICS` of the batch the followers trained on: ``"welfare"`` (mean
            collective env return of an episode), ``"incentive_paid"`` (mean incentive paid
            in an episode), ``"prosocial_share"`` (share of agent-steps taking the task's
            ``prosocial_action``: cleaning in Cleanup), ``"prosocial_events"`` (the task's
            prosocial events per episode: lever pulls, waste cells cleaned) and
            ``"episodes"`` (played so far).
        """

    @abc.abstractmethod
    def state_dict(self) -> dict:
        """Everything needed to resume the run exactly (parameters, optimisers, generators)."""

    @abc.abstractmethod
    def load_state_dict(self, state: dict) -> None:
        """Restore a run saved by :meth:`state_dict` on an identically constructed designer."""

    def train(self, iterations: int, progress: Callable[[], object] | None = None) -> dict[str, np.ndarray]:
        """Run ``iterations`` iterations; may be called again to continue.

        Parameters
        ----------
        iterations : int
        progress : callable, optional
            Called with no argument after every iteration (e.g. a tqdm ``update``).

        Returns
        -------
        dict of str to ndarray
            Every :meth:`iteration`'s metrics, stacked.
        """
        iterations = check_positive_int(iterations, "iterations")
        history = []
        for _ in range(iterations):
            history.append(self.iteration())
            if progress is not None:
                progress()
        return {key: np.asarray([record[key] for record in history]) for key in history[0]}


class FixedRuleIncentive(IterativeDesigner):
    """Followers trained on their env rewards plus incentives a fixed rule computes per batch.

    Each iteration plays ``B`` episodes, adds :meth:`incentives` of the batch to the env
    rewards and takes one learning step of the followers; the rule itself never learns
    (:class:`FixedBonus`, :class:`CollectiveReward`).

    Parameters
    ----------
    learners : PolicyGradientLearners
    batch_size : int
        Episodes ``B`` per iteration.
    seed : int or numpy.random.Generator
        Of the sampling.
    """

    def __init__(self, learners: PolicyGradientLearners, *, batch_size: int = 128, seed=0):
        if not isinstance(learners, PolicyGradientLearners):
            raise ValueError(f"learners must be PolicyGradientLearners, got {type(learners).__name__}")
        self.learners = learners
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.rng = as_generator(seed)
        self.episodes = 0

    @abc.abstractmethod
    def incentives(self, rollout: Rollout) -> np.ndarray:
        """The incentive of every agent at every step of a batch.

        Parameters
        ----------
        rollout : Rollout
            ``B`` episodes the followers played.

        Returns
        -------
        ndarray of float64, shape (B, T, N)
            Added to ``rollout.env_rewards``; zero after an episode ended.
        """

    def iteration(self) -> dict:
        learners = self.learners
        rollout = learners.sample(self.batch_size, self.rng)
        paid = self.incentives(rollout)
        if paid.shape != rollout.env_rewards.shape:
            raise ValueError(
                f"{type(self).__name__}.incentives must have shape {rollout.env_rewards.shape}, got {paid.shape}"
            )
        learners.step(rollout, torch.as_tensor(rollout.env_rewards + paid, dtype=learners.dtype))
        self.episodes += self.batch_size
        return iteration_metrics(rollout, learners.task, paid.sum() / self.batch_size, self.episodes)

    def state_dict(self) -> dict:
        return {
            "learners": self.learners.state_dict(),
            "rng": generator_state(self.rng),
            "episodes": self.episodes,
        }

    def load_state_dict(self, state: dict) -> None:
        what = f"{type(self).__name__} state"
        episodes = check_int(entry(state, "episodes", what), "episodes", low=0)
        rng_state = check_generator_state(self.rng, entry(state, "rng", what))
        self.learners.load_state_dict(entry(state, "learners", what))
        self.rng.bit_generator.state = rng_state
        self.episodes = episodes


class FixedBonus(FixedRuleIncentive):
    """Followers paid a constant bonus per prosocial event.

    Pays agent ``i`` its bonus ``b_i`` per unit of ``task.prosocial_events`` at every played
    step (per lever pull on Escape Room, per waste cell its beam removes on Cleanup).
    ``bonus = 0`` is selfish learning, the no-incentive baseline.

    Information structure: none — the bonus is fixed in advance.

    Parameters
    ----------
    learners : PolicyGradientLearners
    bonus : float or array_like of shape (N,)
        ``b >= 0``.
    batch_size : int
        Episodes ``B`` per iteration.
    seed : int or numpy.random.Generator
        Of the sampling.
    """

    def __init__(self, learners: PolicyGradientLearners, bonus=0.0, *, batch_size: int = 128, seed=0):
        super().__init__(learners, batch_size=batch_size, seed=seed)
        bonus = as_finite_array(bonus, "bonus")
        if bonus.shape not in ((), (learners.n_agents,)) or np.any(bonus < 0):
            raise ValueError(
                f"bonus must be a non-negative number or {learners.n_agents} of them, got {bonus!r}"
            )
        self.bonus = np.broadcast_to(bonus, (learners.n_agents,)).copy()

    def incentives(self, rollout: Rollout) -> np.ndarray:
        return self.bonus * rollout.prosocial


class CollectiveReward(FixedRuleIncentive):
    """Followers who share the collective reward equally: a reference, not a designer.

    Agent ``i``'s incentive at step ``t`` is ``r̄_t − r_t^i`` with ``r̄_t = (1/N) Σ_j r_t^j``,
    so every agent is trained on ``r̄_t``: each maximises the collective env return (divided
    by ``N``, which keeps the rewards on the selfish learners' scale and their learning rate
    comparable), the objective of the planner. The transfers sum to zero at every step (a
    budget-balanced redistribution, so ``incentive_paid`` is zero up to rounding), and they
    are negative for agents who earn more than the mean (on Escape Room, those who stand
    still while others pay −1 to move). Agents that optimise others' rewards as their own
    are the prosocial agents of Peysakhovich and Lerer (2018), "Prosocial learning agents
    solve generalized Stag Hunts better than selfish ones", AAMAS; with equal weights they
    show what the followers reach when their objectives are aligned with the planner's and
    nothing is left to design.

    Information structure: observes every agent's env reward at every step.

    Its parameters are those of :class:`FixedRuleIncentive`.
    """

    def incentives(self, rollout: Rollout) -> np.ndarray:
        rewards = rollout.env_rewards
        return rewards.mean(axis=-1, keepdims=True) - rewards
