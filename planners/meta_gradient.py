"""Meta-gradient incentive design (Yang et al. 2021, "Adaptive incentive design with
multi-agent meta-gradient reinforcement learning", AAMAS) on any batched episodic task
(:mod:`incentive_envs.episodic`: Escape Room, Cleanup, the tax economy).

Two kinds of incentive share one designer. On bonus tasks (Escape Room, Cleanup) the
designer owns an incentive function (below). On a :class:`~incentive_envs.episodic.ScheduleTask`
(the tax economy) its parameters are the schedule's rates themselves (:class:`ScheduleDesign`):
the followers' training rewards are the task's rewards recomputed under the rates, the
designer's reward ``G^D`` is the task's objective (equality × productivity of each episode's
coin), which depends on the rates directly as well as through the followers, and nothing is
paid. Written generally, the validation objective below is

``V(η) = (1/B) Σ_b Σ_t log π_{θ'(η)}(a_t | o_t) (G_t^D − β_t)|_detached + (1/B) Σ_b Σ_t r_t^D(η) − κ · paid(η)``

whose middle (pathwise) term is constant in ``η`` on bonus tasks: ``∇_η V`` is the exact
gradient of ``E_{a ∼ π_{θ'(η)}}[Σ_t r_t^D(η)] − κ · paid`` estimated on ``τ'`` (score function
plus pathwise derivative).

The designer owns an incentive function ``r_η(s, a)`` with values in ``[0, R_max]^N`` — a
small MLP of the task's incentive features of the global state and the joint action (one-hot
positions and actions on Escape Room; the waste, apple and agent grids and the one-hot
actions on Cleanup) squashed by ``R_max · sigmoid`` (:class:`IncentiveFunction`) — paid to
every agent on top of its environment reward, at every step (``pay_per="step"``) or as a
price per prosocial event (``pay_per="event"``: per waste cell cleaned, per lever pull, so
one step can pay several times ``R_max``). The followers are
:class:`~agents.policy_gradient.PolicyGradientLearners` that take one REINFORCE step per
batch of episodes. Each iteration of the online cross-validation scheme
(:meth:`MetaGradientDesigner.iteration`) is

1. take a batch ``τ`` of ``B`` episodes played by the current policies ``θ``;
2. every agent takes its learning step on env reward plus incentive,
   ``θ'(η) = θ + lr ∇_θ J(θ; τ, r_env + r_η)``, kept as a differentiable function of ``η``;
3. play a fresh validation batch ``τ'`` with ``θ'`` (sampling carries no gradient);
4. ascend the designer's objective: the score-function surrogate on ``τ'``,

   ``V(η) = (1/B) Σ_b Σ_t log π_{θ'(η)}(a_t | o_t) (G_t^D − β_t) − κ (1/B) Σ_{b,t,i} r_η(s_t, a_t)_i |_τ``

   where ``π`` is the joint policy (the sum of the agents' log-probabilities), ``G_t^D`` the
   collective return-to-go on ``τ'`` (the agents' env rewards summed over agents,
   undiscounted, independent of ``η``), ``β_t`` its mean over the episodes alive at ``t``
   and the last term the incentive paid on ``τ``, priced at ``κ`` = ``cost_weight`` and
   differentiated directly; ``∇_η V`` flows through ``θ'(η)`` (:func:`meta_gradient`) and
   feeds an Adam step;
5. the agents keep ``θ'`` (detached) and ``τ'`` is the next iteration's ``τ``.

The designer's objective is thus the collective environment return per episode,
``W = E[Σ_t Σ_i r_env]``, with ``κ = 0``, or ``W − κ · (incentive paid per episode)`` with a
cost of incentives; incentives are transfers, so the followers' total reward is ``W`` plus
the incentive paid.

Reusing ``τ'`` as the next training batch is sound (it was played by exactly the policies
that train on it next) and halves the number of episodes: every iteration plays ``B``
episodes and takes one follower step, like the selfish baseline. Every batch's incentive
bill thus enters ``V`` exactly once, as the cost term of the iteration that trains on it;
the score-function part only scores welfare, so ``V`` is a plain function of ``η`` for
fixed rollouts and ``∇_η V`` is its exact gradient (what the tests check against finite
differences). What this leaves out is the effect of ``θ'`` on the next batch's bill.

``κ`` defaults to 0.01: small enough not to discourage the lever bonus the agents need
on Escape Room (a lever pull costs ``−1`` and must be paid more than that), large enough to
stop paying for actions that need no bonus.

**Looking past the next step** (``response="fixed_point"``, schedule tasks). The one-step
look-ahead sees only how far the followers move in one learning step. On the tax economy
that is about a thousandth of the direct effect of the rates on the objective (measured at
1,000 workers: mean components 2·10³–8·10³ against −11…0 per rate), so the designer raises
every rate until the workers, long after, stop working (flat rates near 0.6 and an
equilibrium objective of 0.60–0.70 of the optimum). With ``response="fixed_point"`` the
designer differentiates the followers' long-run response instead: the fixed point of their
learning rule. An entropy-regularised REINFORCE learner (entropy weight ``c > 0``) on a
one-step task converges to the soft best response ``π_i ∝ exp(u_i/c)`` (for a policy that
can express any logits at the observed rates, as the linear policy with a bias can), and the
designer ascends the objective at that equilibrium,
``V(θ) = eq×prod(l̄(θ), θ)`` with ``l̄`` the workers' expected labour
(:meth:`~incentive_envs.tax_economy.task.TaxEconomyTask.soft_response_objective`, exact
gradient by the implicit function theorem in the lump sum). This is implicit differentiation
through the learners' fixed point (Lorraine, J., Vicol, P. & Duvenaud, D. (2020), "Optimizing
millions of hyperparameters by implicit differentiation", AISTATS; Rajeswaran, A., Finn, C.,
Kakade, S. & Levine, S. (2019), "Meta-learning with implicit gradients", NeurIPS) in closed
form. The designer uses the workers' utilities at every labour level (the task's model of
their rewards), not only at the played ones; the followers still learn online from the
batches they play under the rates in force, one step per iteration.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import torch

from agents.policy_gradient import (
    IterativeDesigner,
    Params,
    PolicyGradientLearners,
    entry,
    generator_state,
    iteration_metrics,
    reinforce_surrogate,
    returns_to_go,
)
from incentive_envs.episodic import EpisodicTask, Rollout, ScheduleTask
from incentive_envs.validation import (
    check_bool,
    check_choice,
    check_generator_state,
    check_int,
    check_positive_int,
    check_scalar,
)

RESPONSES = ("one_step", "fixed_point")
"""The followers' responses a designer can differentiate (:class:`MetaGradientDesigner`)."""

PAY_PER = ("step", "event")
"""What an :class:`IncentiveFunction` pays for: every step, or each prosocial event."""


class IncentiveFunction(torch.nn.Module):
    """A bounded incentive per agent, paid every step or as a price per prosocial event.

    With ``pay_per="step"`` agent ``i`` receives ``R_max · sigmoid(MLP(features(s, a)))_i`` at
    every played step; with ``pay_per="event"`` it receives
    ``e_i(s, a) · R_max · sigmoid(MLP(features(s, a)))_i``, with ``e_i`` the task's
    ``prosocial_events`` (lever pulls on Escape Room, waste cells cleaned on Cleanup): the
    network sets a price per event.

    Pricing the event is the form of the fixed bonus and of the dual-RL planner's menu, so the
    three designers pay for the same act and differ in how they set the price; LIO's incentive
    on Cleanup also keys on cleaning, through its input of whether the other agent cleaned
    (Yang et al. 2020, ``obs_cleaned_1hot``). Nothing is paid at steps without an event.

    Parameters
    ----------
    task : EpisodicTask
        Sets the input size (``task.incentive_feature_size``) and the outputs (``N``).
    max_incentive : float
        ``R_max > 0``: the largest bonus per agent per step, or per event.
    pay_per : {"step", "event"}
        What the output pays for (above).
    hidden : tuple of int
        Hidden widths (tanh); ``()`` is a logistic-linear function.
    init_bias : float
        Initial bias of the output layer: incentives start near ``R_max · sigmoid(init_bias)``.
    constant_start : bool
        Start the output layer's weights at zero, so that the initial incentive is exactly
        ``R_max · sigmoid(init_bias)`` for every state and action: a constant bonus, which
        leaves the followers' first learning steps undistorted (with random output weights
        the initial incentive differs between actions by chance). The hidden layers still
        start at random and learn once the output weights move.
    seed : int or torch.Generator
        Seeds the initial weights (normal, standard deviation ``1/sqrt(fan_in)``).
    dtype : torch.dtype
    """

    def __init__(
        self,
        task: EpisodicTask,
        max_incentive: float,
        *,
        pay_per: str = "step",
        hidden: tuple[int, ...] = (64,),
        init_bias: float = 0.0,
        constant_start: bool = False,
        seed: int | torch.Generator = 0,
        dtype: torch.dtype = torch.float32,
    ):
        super().__init__()
        constant_start = check_bool(constant_start, "constant_start")
        if not isinstance(task, EpisodicTask):
            raise ValueError(
                f"task must implement incentive_envs.episodic.EpisodicTask, got {type(task).__name__}"
            )
        self.n_agents = task.n_agents
        self.max_incentive = check_scalar(max_incentive, "max_incentive", low=0.0, low_inclusive=False)
        self.pay_per = check_choice(pay_per, "pay_per", PAY_PER)
        init_bias = check_scalar(init_bias, "init_bias")
        generator = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(seed)
        widths = (
            task.incentive_feature_size,
            *(check_positive_int(w, "hidden") for w in hidden),
            self.n_agents,
        )
        layers = [torch.nn.Linear(a, b, dtype=dtype) for a, b in zip(widths[:-1], widths[1:])]
        with torch.no_grad():
            for layer in layers:
                torch.nn.init.normal_(layer.weight, std=layer.in_features**-0.5, generator=generator)
                layer.bias.zero_()
            layers[-1].bias.fill_(init_bias)
            if constant_start:
                layers[-1].weight.zero_()
        self.layers = torch.nn.ModuleList(layers)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Incentives ``(..., N)`` for incentive features ``(..., F)`` of states and joint actions."""
        hidden = inputs
        for k, layer in enumerate(self.layers):
            hidden = layer(torch.tanh(hidden) if k else hidden)
        return self.max_incentive * torch.sigmoid(hidden)

    def rollout_incentives(self, rollout: Rollout) -> torch.Tensor:
        """The incentive paid to every agent at every played step of ``rollout``, shape
        (B, T, N); zero after an episode ended (and, with ``pay_per="event"``, at steps
        without a prosocial event)."""
        if rollout.n_agents != self.n_agents:
            raise ValueError(f"rollout has {rollout.n_agents} agents, the incentive function {self.n_agents}")
        dtype = self.layers[0].weight.dtype
        paid = torch.as_tensor(rollout.alive, dtype=dtype)[..., None] * self(
            torch.as_tensor(rollout.incentive_features, dtype=dtype)
        )
        if self.pay_per == "event":
            return torch.as_tensor(rollout.prosocial, dtype=dtype) * paid
        return paid

    def train_rewards(self, rollout: Rollout) -> tuple[torch.Tensor, torch.Tensor]:
        """``(r_env + r_η, incentive paid per episode)`` on a played batch (both with a graph to η)."""
        paid = self.rollout_incentives(rollout)
        env = torch.as_tensor(rollout.env_rewards, dtype=paid.dtype)
        return env + paid, paid.sum() / rollout.batch_size

    def designer_rewards(self, rollout: Rollout) -> torch.Tensor:
        """The designer's reward per step, the collective env reward ``(B, T)`` (independent of η)."""
        return torch.as_tensor(rollout.env_rewards, dtype=self.layers[0].weight.dtype).sum(-1)

    def publish(self) -> None:
        """Nothing to do: the bonus is paid by the designer, not by the task."""


class ScheduleDesign(torch.nn.Module):
    """The rates ``θ ∈ [0, 1]^D`` of a :class:`~incentive_envs.episodic.ScheduleTask` (the
    seven marginal rates of the tax economy) as the designer's parameters ``η = θ``.

    The followers' training rewards are the task's rewards recomputed under ``θ``
    (``schedule_rewards``), the designer's reward the task's objective of each episode at the
    played actions (``schedule_objective``, placed at the episode's last step), and nothing is
    paid (taxes are transfers: the objective already counts them). After every optimiser step
    :meth:`publish` projects ``θ`` onto ``[0, 1]^D`` (projected Adam) and posts it to the task,
    whose next batches are played under it.

    Parameters
    ----------
    task : ScheduleTask
    dtype : torch.dtype
        Of the followers' rewards (the rates themselves are float64).
    """

    def __init__(self, task: ScheduleTask, dtype: torch.dtype = torch.float64):
        super().__init__()
        if not isinstance(task, ScheduleTask):
            raise ValueError(
                f"task must implement incentive_envs.episodic.ScheduleTask, got {type(task).__name__}"
            )
        self.task, self.dtype = task, dtype
        self.rates = torch.nn.Parameter(torch.as_tensor(np.array(task.schedule), dtype=torch.float64))

    def train_rewards(self, rollout: Rollout) -> tuple[torch.Tensor, torch.Tensor]:
        """``(rewards under θ, 0)`` (module docstring of :class:`ScheduleDesign`)."""
        return self.task.schedule_rewards(rollout, self.rates).to(self.dtype), self.rates.new_zeros(())

    def designer_rewards(self, rollout: Rollout) -> torch.Tensor:
        """The task's objective of each episode at its last step, ``(B, T)``, differentiable in ``θ``."""
        objective = self.task.schedule_objective(rollout, self.rates)
        earlier = objective.new_zeros((rollout.batch_size, rollout.max_steps - 1))
        return torch.cat((earlier, objective[:, None]), dim=1)

    def publish(self) -> None:
        """Project ``θ`` onto ``[0, 1]^D`` and apply it to the task."""
        with torch.no_grad():
            self.rates.clamp_(0.0, 1.0)
        self.task.set_schedule(self.rates.detach().numpy().astype(np.float64))


def _incentivised_update(
    learners: PolicyGradientLearners, params: Params, incentive_fn, train: Rollout
) -> tuple[Params, torch.Tensor]:
    """``θ'(η)`` (with graph) and the incentive paid per episode on ``train``."""
    rewards, paid = incentive_fn.train_rewards(train)
    return learners.updated(params, train, rewards, create_graph=True), paid


def _designer_value(
    learners: PolicyGradientLearners,
    incentive_fn,
    new_params: Params,
    validation: Rollout,
    paid: torch.Tensor,
    cost_weight: float,
) -> torch.Tensor:
    """``V(η)`` of the module docstring from ``θ'(η)`` and the incentive ``paid`` per episode on ``τ``."""
    designer = incentive_fn.designer_rewards(validation)
    joint_log_probs = learners.log_probs(new_params, validation).sum(-1)
    alive = torch.as_tensor(validation.alive, dtype=learners.dtype)
    value = reinforce_surrogate(joint_log_probs, returns_to_go(designer.detach()), alive, baseline=True)
    pathwise = (alive * designer).sum() / validation.batch_size
    return value + pathwise - cost_weight * paid


def meta_objective(
    learners: PolicyGradientLearners,
    params: Params,
    incentive_fn: IncentiveFunction,
    train: Rollout,
    validation: Rollout,
    cost_weight: float = 0.01,
) -> torch.Tensor:
    """The designer's validation objective ``V(η)`` (module docstring) for fixed rollouts.

    Parameters
    ----------
    learners : PolicyGradientLearners
        Define the policies and the learning step.
    params : tuple of Tensor
        ``θ``, the policies before the step (``τ`` is assumed to be theirs).
    incentive_fn : IncentiveFunction
        ``r_η``; ``V`` is a differentiable function of its parameters.
    train, validation : Rollout
        ``τ`` (the learners train on it) and ``τ'`` (scored under ``θ'(η)``).
    cost_weight : float
        ``κ >= 0``.

    Returns
    -------
    Tensor
        A scalar with a graph to ``incentive_fn.parameters()``.
    """
    cost_weight = check_scalar(cost_weight, "cost_weight", low=0.0)
    new_params, paid = _incentivised_update(learners, params, incentive_fn, train)
    return _designer_value(learners, incentive_fn, new_params, validation, paid, cost_weight)


def meta_gradient(
    learners: PolicyGradientLearners,
    params: Params,
    incentive_fn: IncentiveFunction,
    train: Rollout,
    validation: Rollout,
    cost_weight: float = 0.01,
) -> tuple[torch.Tensor, ...]:
    """``∇_η V(η)`` for fixed rollouts, one tensor per ``incentive_fn.parameters()`` entry
    (arguments as in :func:`meta_objective`)."""
    value = meta_objective(learners, params, incentive_fn, train, validation, cost_weight)
    return torch.autograd.grad(value, tuple(incentive_fn.parameters()))


class MetaGradientDesigner(IterativeDesigner):
    """The meta-gradient incentive designer and its followers (module docstring).

    Information structure: the designer observes the played episodes (the incentive features
    of states and joint actions, env rewards) and knows the followers' learning rule (a
    REINFORCE step with known learning rate), which it differentiates through; it does not
    know the game's rules.

    Parameters
    ----------
    learners : PolicyGradientLearners
        The followers (their task defines the incentive function's input and outputs).
    batch_size : int
        Episodes ``B`` per iteration.
    designer_lr : float
        Adam's learning rate on ``η``.
    max_incentive : float
        ``R_max``.
    pay_per : {"step", "event"}
        The incentive function pays every step or prices each prosocial event
        (:class:`IncentiveFunction`; ``"event"`` needs a bonus task).
    cost_weight : float
        ``κ``, the price of a unit of incentive in the designer's objective.
    incentive_hidden : tuple of int
        Hidden widths of the incentive function.
    init_bias : float
        Output bias of the incentive function at the start.
    constant_start : bool
        Start from a constant incentive (see :class:`IncentiveFunction`).
    response : {"one_step", "fixed_point"}
        What the designer differentiates: the followers' next learning step on ``τ`` scored
        on ``τ'`` (steps 1–5), or their soft-best-response fixed point (module docstring;
        schedule tasks with ``soft_response_objective`` and followers with
        ``entropy_coef > 0`` only).
    seed : int
        Seeds the incentive function (``torch.Generator``) and the sampling
        (``numpy.random.Generator``).

    Attributes
    ----------
    learners : PolicyGradientLearners
    incentive_fn : IncentiveFunction
    episodes : int
        Follower episodes played so far.
    """

    def __init__(
        self,
        learners: PolicyGradientLearners,
        *,
        batch_size: int = 128,
        designer_lr: float = 0.01,
        max_incentive: float = 3.0,
        pay_per: str = "step",
        cost_weight: float = 0.01,
        incentive_hidden: tuple[int, ...] = (64,),
        init_bias: float = 0.0,
        constant_start: bool = False,
        response: str = "one_step",
        seed: int = 0,
    ):
        if not isinstance(learners, PolicyGradientLearners):
            raise ValueError(f"learners must be PolicyGradientLearners, got {type(learners).__name__}")
        self.response = check_choice(response, "response", RESPONSES)
        if self.response == "fixed_point" and not (
            isinstance(learners.task, ScheduleTask) and hasattr(learners.task, "soft_response_objective")
        ):
            raise ValueError(
                "response='fixed_point' needs a schedule task with soft_response_objective "
                f"(the tax economy), got {type(learners.task).__name__}"
            )
        if self.response == "fixed_point" and learners.entropy_coef == 0.0:
            raise ValueError(
                "response='fixed_point' needs followers with entropy_coef > 0 (without entropy their "
                "fixed point is a hard best response, whose derivative in the rates is zero almost "
                "everywhere), got entropy_coef=0.0"
            )
        pay_per = check_choice(pay_per, "pay_per", PAY_PER)
        if pay_per == "event" and isinstance(learners.task, ScheduleTask):
            raise ValueError(
                f"pay_per='event' prices prosocial events of a bonus task; {type(learners.task).__name__} "
                "is taxed by a schedule, which has none"
            )
        self.learners = learners
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.cost_weight = check_scalar(cost_weight, "cost_weight", low=0.0)
        designer_lr = check_scalar(designer_lr, "designer_lr", low=0.0, low_inclusive=False)
        incentive_seed, sampling_seed = np.random.SeedSequence(seed).generate_state(2)
        if isinstance(learners.task, ScheduleTask):
            self.incentive_fn = ScheduleDesign(learners.task, learners.dtype)
        else:
            self.incentive_fn = IncentiveFunction(
                learners.task,
                max_incentive,
                pay_per=pay_per,
                hidden=incentive_hidden,
                init_bias=init_bias,
                constant_start=constant_start,
                seed=int(incentive_seed),
                dtype=learners.dtype,
            )
        self.optimizer = torch.optim.Adam(self.incentive_fn.parameters(), lr=designer_lr)
        self.rng = np.random.default_rng(sampling_seed)
        self.episodes = 0
        self._next_batch: Rollout | None = None

    def iteration(self) -> dict:
        """One iteration of steps 1–5 (module docstring); returns the metrics of the batch
        ``τ`` the followers trained on (:meth:`IterativeDesigner.iteration`; ``episodes``
        counts the validation batches and the very first batch)."""
        if self.response == "fixed_point":
            return self._fixed_point_iteration()
        learners = self.learners
        train = self._next_batch or self._sample(learners.params)
        new_params, paid = _incentivised_update(learners, learners.params, self.incentive_fn, train)
        validation = self._sample(tuple(p.detach() for p in new_params))
        value = _designer_value(learners, self.incentive_fn, new_params, validation, paid, self.cost_weight)
        self.optimizer.zero_grad()
        (-value).backward()
        self.optimizer.step()
        self.incentive_fn.publish()
        learners.params = tuple(p.detach() for p in new_params)
        self._next_batch = validation
        return iteration_metrics(train, learners.task, float(paid.detach()), self.episodes)

    def _fixed_point_iteration(self) -> dict:
        """One iteration with ``response="fixed_point"`` (:class:`MetaGradientDesigner`): the
        followers play a batch under the rates in force and take their learning step on it;
        the designer ascends the objective at the followers' soft-best-response equilibrium."""
        learners, rates = self.learners, self.incentive_fn.rates
        train = self._sample(learners.params)
        learners.step(train)
        value = learners.task.soft_response_objective(rates, learners.entropy_coef)
        self.optimizer.zero_grad()
        (-value).backward()
        self.optimizer.step()
        self.incentive_fn.publish()
        return iteration_metrics(train, learners.task, 0.0, self.episodes)

    def _sample(self, params: Params) -> Rollout:
        self.episodes += self.batch_size
        return self.learners.sample(self.batch_size, self.rng, params)

    def state_dict(self) -> dict:
        return {
            "learners": self.learners.state_dict(),
            "incentive_fn": copy.deepcopy(self.incentive_fn.state_dict()),
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
            "rng": generator_state(self.rng),
            "episodes": self.episodes,
            "next_batch": None if self._next_batch is None else dataclasses.asdict(self._next_batch),
        }

    def load_state_dict(self, state: dict) -> None:
        what = "MetaGradientDesigner state"
        episodes = check_int(entry(state, "episodes", what), "episodes", low=0)
        rng_state = check_generator_state(self.rng, entry(state, "rng", what))
        saved_batch = entry(state, "next_batch", what)
        try:
            next_batch = None if saved_batch is None else Rollout(**saved_batch)
            scratch = copy.deepcopy(self.incentive_fn)
            scratch.load_state_dict(entry(state, "incentive_fn", what))
            torch.optim.Adam(scratch.parameters()).load_state_dict(entry(state, "optimizer", what))
        except (TypeError, RuntimeError, KeyError) as error:
            raise ValueError(f"{what} does not fit this designer: {error}") from error
        self.learners.load_state_dict(entry(state, "learners", what))
        self.incentive_fn.load_state_dict(entry(state, "incentive_fn", what))
        self.optimizer.load_state_dict(copy.deepcopy(entry(state, "optimizer", what)))
        self.rng.bit_generator.state = rng_state
        self.episodes, self._next_batch = episodes, next_batch
        self.incentive_fn.publish()
