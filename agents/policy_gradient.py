"""Differentiable policy-gradient learners for the Escape Room game ER(N, M), in torch.

Each of the ``N`` agents has its own softmax policy over the three actions (lever, start,
door). Its input is the global state — the one-hot positions of all agents, ``3N`` entries —
followed by the one-hot time step ``t`` in ``0 … T−1`` (``T`` = ``max_steps``). The policy is
linear in these features (the default; with one-hot inputs this is a factored table) or a
small tanh MLP. Parameters are independent per agent: agents are distinguishable, which is
what lets them break the symmetry of their common start.

Episodes are played in batches by :meth:`PolicyGradientLearners.sample`, which steps
:func:`~incentive_envs.escape_room.game.step_batch` on all ``B`` games at once; the result
is a :class:`Rollout` of NumPy arrays. Log-probabilities are recomputed from a rollout with
any parameters (:meth:`~PolicyGradientLearners.log_probs`), so the learning step

``θ_i' = θ_i + lr ∇_{θ_i} J_i(θ_i)``   (:meth:`~PolicyGradientLearners.updated`)

is a torch function of the rewards the agents were trained on: with
``create_graph=True`` it is differentiable with respect to incentives added to those
rewards (the meta-gradient of :mod:`planners.meta_gradient`). ``J_i`` is the REINFORCE
surrogate of agent ``i``,

``J_i = (1/B) Σ_b Σ_t alive[b, t] log π_i(a_t^i | s_t) (G_t^i − β_t^i) + c H(π_i(· | s_t))``,

where ``G_t^i`` is agent ``i``'s return-to-go (undiscounted; its env reward plus any
incentive), ``β_t^i`` the optional baseline (the mean of ``G_t^i`` over the episodes still
running at ``t``) and ``c`` the optional entropy coefficient. Its gradient is the usual
unbiased estimate of ``∇_{θ_i}`` of agent ``i``'s expected return (plus ``c`` times the
entropy); dividing by ``B`` makes the learning rate independent of the batch size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from incentive_envs.escape_room.game import N_POSITIONS, START, check_params, one_hot, step_batch
from incentive_envs.validation import check_positive_int, check_scalar

Params = tuple[torch.Tensor, ...]
"""A learner's parameters: per layer a weight ``(N, in, out)`` and a bias ``(N, out)``."""


@dataclass(frozen=True)
class Rollout:
    """``B`` played episodes of ER(N, M), padded to ``T`` steps.

    Attributes
    ----------
    positions : ndarray of int64, shape (B, T, N)
        Positions before each step (all ``START`` at ``t = 0``).
    actions : ndarray of int64, shape (B, T, N)
        Joint action of each step (meaningless where the episode was over).
    env_rewards : ndarray of float64, shape (B, T, N)
        Environment rewards, zero after an episode ended.
    alive : ndarray of bool, shape (B, T)
        Whether step ``t`` of episode ``b`` was played.
    """

    positions: np.ndarray
    actions: np.ndarray
    env_rewards: np.ndarray
    alive: np.ndarray

    @property
    def batch_size(self) -> int:
        return self.actions.shape[0]

    @property
    def max_steps(self) -> int:
        return self.actions.shape[1]

    @property
    def n_agents(self) -> int:
        return self.actions.shape[2]

    def welfare(self) -> np.ndarray:
        """Each episode's total environment reward (summed over agents and steps), shape (B,)."""
        return self.env_rewards.sum(axis=(1, 2))

    def state_features(self) -> np.ndarray:
        """One-hot positions before each step, shape (B, T, 3N), float32."""
        return one_hot(self.positions)

    def action_features(self) -> np.ndarray:
        """One-hot joint actions, shape (B, T, 3N), float32."""
        return one_hot(self.actions)

    def action_frequencies(self) -> np.ndarray:
        """Fraction of played steps in which each agent picked each position, shape (N, 3)."""
        counts = np.stack([((self.actions == p) & self.alive[..., None]).sum(axis=(0, 1)) for p in range(3)])
        return counts.T / max(int(self.alive.sum()), 1)


def play(
    choose: Callable[[int, np.ndarray], np.ndarray],
    batch_size: int,
    n_agents: int,
    threshold: int,
    max_steps: int,
) -> Rollout:
    """Play ``batch_size`` episodes of ER(N, M) in parallel with ``choose(t, positions) -> actions``.

    ``choose`` gets the step and the positions ``(B, N)`` before it and returns the joint
    actions ``(B, N)`` of every game (those of finished games are ignored). Episodes end
    when :func:`~incentive_envs.escape_room.game.step_batch` reports ``done`` or after
    ``max_steps`` steps.
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    n_agents, threshold = check_params(n_agents, threshold)
    max_steps = check_positive_int(max_steps, "max_steps")
    shape = (batch_size, max_steps, n_agents)
    positions, actions = np.empty(shape, dtype=np.int64), np.empty(shape, dtype=np.int64)
    env_rewards, alive = np.zeros(shape), np.zeros((batch_size, max_steps), dtype=bool)
    current, running = np.full((batch_size, n_agents), START, dtype=np.int64), np.ones(batch_size, bool)
    for t in range(max_steps):
        positions[:, t], alive[:, t] = current, running
        actions[:, t] = choose(t, current.copy())
        current, rewards, _, done = step_batch(current, actions[:, t], threshold)
        env_rewards[:, t] = np.where(running[:, None], rewards, 0.0)
        running = running & ~done
    return Rollout(positions, actions, env_rewards, alive)


def replay(actions, threshold: int) -> Rollout:
    """The rollout of fixed joint actions ``(B, T, N)``: rewards, positions and the alive mask
    follow from the rules; actions after an episode ended are kept but masked out."""
    actions = np.asarray(actions)
    if actions.ndim != 3 or actions.dtype.kind not in "iu":
        raise ValueError(
            f"actions must be an integer array of shape (batch, steps, n_agents), got {actions.dtype} {actions.shape}"
        )
    batch_size, max_steps, n_agents = actions.shape
    return play(lambda t, positions: actions[:, t], batch_size, n_agents, threshold, max_steps)


def returns_to_go(rewards: torch.Tensor) -> torch.Tensor:
    """Undiscounted ``G_t = Σ_{s >= t} r_s`` along axis 1 of ``(B, T, ...)`` rewards."""
    return rewards.flip(1).cumsum(1).flip(1)


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
    """``N`` independent softmax-policy REINFORCE learners for ER(N, M) (module docstring).

    Parameters
    ----------
    n_agents, threshold : int
        ``N`` and ``M`` of the game.
    learning_rate : float
        ``lr > 0`` of the gradient-ascent step.
    max_steps : int
        Episode length ``T`` (also the size of the time one-hot).
    hidden : tuple of int
        Hidden layer widths of each policy (tanh); ``()`` is a linear policy.
    baseline : bool
        Subtract the per-step mean return (see :func:`reinforce_surrogate`).
    entropy_coef : float
        ``c >= 0``, weight of the policy entropy in ``J_i``.
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
        n_agents: int,
        threshold: int,
        learning_rate: float,
        *,
        max_steps: int = 5,
        hidden: tuple[int, ...] = (),
        baseline: bool = True,
        entropy_coef: float = 0.0,
        init_scale: float = 0.1,
        seed: int | torch.Generator = 0,
        dtype: torch.dtype = torch.float32,
    ):
        self.n_agents, self.threshold = check_params(n_agents, threshold)
        self.learning_rate = check_scalar(learning_rate, "learning_rate", low=0.0, low_inclusive=False)
        self.max_steps = check_positive_int(max_steps, "max_steps")
        self.hidden = tuple(check_positive_int(width, "hidden") for width in hidden)
        self.baseline = bool(baseline)
        self.entropy_coef = check_scalar(entropy_coef, "entropy_coef", low=0.0)
        init_scale = check_scalar(init_scale, "init_scale", low=0.0)
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
        self.dtype = dtype
        generator = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(seed)
        widths = (N_POSITIONS * self.n_agents + self.max_steps, *self.hidden, N_POSITIONS)
        params = []
        for fan_in, fan_out in zip(widths[:-1], widths[1:]):
            params.append(
                init_scale * torch.randn(self.n_agents, fan_in, fan_out, generator=generator, dtype=dtype)
            )
            params.append(torch.zeros(self.n_agents, fan_out, dtype=dtype))
        self.params: Params = tuple(params)

    # -- policy ------------------------------------------------------------------------------
    def features(self, positions: np.ndarray, steps: np.ndarray) -> torch.Tensor:
        """Policy input ``[one-hot positions (3N), one-hot step (T)]`` of ``positions (..., N)``
        at time ``steps`` (broadcast to ``positions.shape[:-1]``)."""
        time = np.eye(self.max_steps, dtype=np.float32)[np.broadcast_to(steps, positions.shape[:-1])]
        return torch.as_tensor(np.concatenate((one_hot(positions), time), axis=-1), dtype=self.dtype)

    def logits(self, params: Params, features: torch.Tensor) -> torch.Tensor:
        """Every agent's action logits, shape ``(*features.shape[:-1], N, 3)``."""
        hidden = features.unsqueeze(-2).expand(*features.shape[:-1], self.n_agents, features.shape[-1])
        for layer in range(0, len(params), 2):
            if layer:
                hidden = torch.tanh(hidden)
            hidden = torch.einsum("...nf,nfh->...nh", hidden, params[layer]) + params[layer + 1]
        return hidden

    def log_policy(self, params: Params, rollout: Rollout) -> torch.Tensor:
        """``log π_i(· | s_t)`` at every state of the rollout, shape (B, T, N, 3)."""
        self._check_rollout(rollout)
        features = self.features(rollout.positions, np.arange(rollout.max_steps))
        return torch.log_softmax(self.logits(params, features), dim=-1)

    def log_probs(self, params: Params, rollout: Rollout) -> torch.Tensor:
        """``log π_i(a_t^i | s_t)`` of the rollout's actions under ``params``, shape (B, T, N)."""
        log_policy = self.log_policy(params, rollout)
        return log_policy.gather(-1, torch.as_tensor(rollout.actions).unsqueeze(-1)).squeeze(-1)

    def sample(self, batch_size: int, rng: np.random.Generator, params: Params | None = None) -> Rollout:
        """Play ``batch_size`` episodes with actions sampled from the policies (no gradient).

        Parameters
        ----------
        batch_size : int
        rng : numpy.random.Generator
            Draws the actions (inverse CDF of the softmax probabilities).
        params : tuple of Tensor, optional
            Default: :attr:`params`.
        """
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        params = self.params if params is None else params

        def choose(t: int, positions: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                probs = torch.softmax(self.logits(params, self.features(positions, t)), dim=-1)
            cumulative = np.cumsum(probs.double().numpy(), axis=-1)
            draws = rng.random(positions.shape)[..., None]
            return np.minimum((draws > cumulative).sum(-1), N_POSITIONS - 1).astype(np.int64)

        return play(choose, batch_size, self.n_agents, self.threshold, self.max_steps)

    # -- learning ----------------------------------------------------------------------------
    def objective(self, params: Params, rollout: Rollout, rewards: torch.Tensor) -> torch.Tensor:
        """``J_i`` of every agent (module docstring), shape (N,).

        Parameters
        ----------
        params : tuple of Tensor
        rollout : Rollout
            Played with any policy; only its states, actions and alive mask are used.
        rewards : Tensor, shape (B, T, N)
            Each agent's reward per step (env reward plus incentive); may carry a graph.
        """
        log_policy = self.log_policy(params, rollout)
        if tuple(rewards.shape) != rollout.actions.shape:
            raise ValueError(f"rewards must have shape {rollout.actions.shape}, got {tuple(rewards.shape)}")
        alive = torch.as_tensor(rollout.alive, dtype=self.dtype)
        taken = log_policy.gather(-1, torch.as_tensor(rollout.actions).unsqueeze(-1)).squeeze(-1)
        value = reinforce_surrogate(taken, returns_to_go(rewards * alive[..., None]), alive, self.baseline)
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

    def _check_rollout(self, rollout: Rollout) -> None:
        if not isinstance(rollout, Rollout):
            raise ValueError(f"rollout must be a Rollout, got {type(rollout).__name__}")
        if rollout.n_agents != self.n_agents or rollout.max_steps != self.max_steps:
            raise ValueError(
                f"rollout has {rollout.n_agents} agents and {rollout.max_steps} steps, "
                f"the learners {self.n_agents} and {self.max_steps}"
            )


def train_without_incentive(
    learners: PolicyGradientLearners,
    iterations: int,
    batch_size: int,
    rng: np.random.Generator,
    progress: Callable[[], object] | None = None,
) -> dict[str, np.ndarray]:
    """Selfish learning: ``iterations`` times, play ``batch_size`` episodes and take one step
    on the env rewards alone (the no-incentive baseline).

    Returns
    -------
    dict of str to ndarray
        Per iteration: ``"welfare"`` (mean total env reward of an episode of the batch),
        ``"incentive_paid"`` (zeros) and ``"episodes"`` (episodes played so far).
    """
    iterations = check_positive_int(iterations, "iterations")
    batch_size = check_positive_int(batch_size, "batch_size")
    welfare = np.empty(iterations)
    for k in range(iterations):
        rollout = learners.sample(batch_size, rng)
        welfare[k] = rollout.welfare().mean()
        learners.step(rollout)
        if progress is not None:
            progress()
    episodes = batch_size * np.arange(1, iterations + 1)
    return {"welfare": welfare, "incentive_paid": np.zeros(iterations), "episodes": episodes}
