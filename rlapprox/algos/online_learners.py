r"""Online updates with eligibility traces, one transition at a time (S&B chapter 12).

A *learner* owns an approximator's weights and its eligibility trace ``z``, and applies the
update of one transition given the TD error δ that the algorithm's loop computes:

- :class:`LinearLearner`: a :class:`~rlapprox.approximators.LinearApproximator` seen through
  its active features ``x`` (tile coding: ``num_tilings`` indices with value 1; other bases:
  every feature). Semi-gradient TD(λ) with accumulating or replacing traces, or true online
  TD(λ) with the dutch trace (van Seijen & Sutton 2014). Work per step is one pass over the
  active features plus the decay of ``z`` and ``w += c z`` on the entries the episode has
  touched (:mod:`rlapprox.algos.trace_support`; whole arrays where those are small or mostly
  touched).
- :class:`GradientLearner`: any ``nn.Module`` (MLP, ConvNet): semi-gradient TD(λ) with one
  accumulating trace per parameter, the gradient taken by autograd.

Both serve U(s) (``out_dim == 1``, ``row = 0``) and Q(s, a) (``row = a``): with one output per
action, the features of (s, a) are those of s in row a of the weight matrix.

The loops take NumPy observations from the env and give it Python ints: one step's work is a
few dozen numbers, so values come back as Python floats.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from rlapprox.algos.trace_support import TraceSupport
from rlapprox.approximators.linear import LinearApproximator
from rlapprox.core.errors import DivergenceError
from rlapprox.core.validation import check_choice, check_range
from rlapprox.features.tiles import TileCoding, TileIndexer

TRACES = ("accumulating", "replacing", "dutch")


@dataclass(frozen=True)
class ActiveFeatures:
    """The nonzero features of one input.

    Attributes:
        indices: ``(m,)`` int64 feature indices, distinct.
        values: ``(m,)`` their values, or ``None`` where all are 1 (tile coding).
    """

    indices: np.ndarray
    values: np.ndarray | None


class LinearLearner:
    r"""TD(λ) updates of a linear model's weights, in place, from its active features.

    With features ``x = x(S, A)`` (row ``A`` of the weights), TD error δ, step size α and
    trace decay γλ:

    - ``"accumulating"``: :math:`z \leftarrow \gamma\lambda z + x`, then
      :math:`w \leftarrow w + \alpha\delta z`;
    - ``"replacing"``: as accumulating, but the active components are set,
      :math:`z_i \leftarrow x_i` (S&B's replacing trace for binary features);
    - ``"dutch"`` (true online TD(λ) / SARSA(λ), S&B §12.5 and §12.8):

      .. math:: z \leftarrow \gamma\lambda z + (1 - \alpha\gamma\lambda\, z^\top x)\, x, \qquad
                w \leftarrow w + \alpha(\delta + Q - Q_{old}) z - \alpha(Q - Q_{old})\, x

      with :math:`Q = w^\top x` before the update and :math:`Q_{old}` the previous step's
      :math:`w^\top x'`.

    With γλ = 0 every trace is ``x`` itself, and a step touches only the active features'
    weights (one-step semi-gradient TD and SARSA, S&B's Figure 10.1 settings). A bias, if the
    model has one, is a feature that is always 1. The weights are NumPy views
    of the model's CPU parameters, so the model itself learns: torch's per-call overhead on
    arrays of a few dozen numbers is about 3× NumPy's (one SARSA step measured 83 µs with
    torch ops against 25 µs with these views, 2-D MountainCar with 8 tilings, Intel Xeon).

    Args:
        model: the linear approximator, on the CPU; its ``linear.weight`` (and bias) are
            updated in place.
        alpha: the step size α > 0 (already divided by the active-feature count if wanted).
        trace_decay: γλ in ``[0, 1]``.
        trace: one of :data:`TRACES`.

    Raises:
        ValueError: for a model whose parameters are not on the CPU.
    """

    def __init__(
        self, model: LinearApproximator, alpha: float, trace_decay: float, trace: str
    ) -> None:
        self.model = model
        self.alpha = check_range("alpha", alpha, low=0.0, low_inclusive=False)
        self.trace_decay = check_range("trace_decay", trace_decay, low=0.0, high=1.0)
        self.trace = check_choice("trace", trace, TRACES)
        weight = model.linear.weight
        if weight.device.type != "cpu":
            raise ValueError(
                f"the online linear learner runs on the CPU; the model is on {weight.device}"
            )
        self.weight = weight.data.numpy()  # (out_dim, num_features), a view: updated in place
        bias = model.linear.bias
        self.bias = None if bias is None else bias.data.numpy()
        self.z = np.zeros_like(self.weight)
        self._support = TraceSupport(self.z, self.weight)  # z ≠ 0 only where touched
        self.z_bias = None if self.bias is None else np.zeros_like(self.bias)
        self.q_old = 0.0
        features = model.features
        self._dtype = weight.dtype
        self._tiles = (
            TileIndexer(features, model.normalizer, self.weight.dtype)
            if isinstance(features, TileCoding) and not features.hashed
            else None
        )
        self._sparse = getattr(features, "active_indices", None)
        self._all = np.arange(features.num_features)
        self.num_active_features = getattr(features, "num_tilings", features.num_features)

    def features(self, obs: np.ndarray) -> ActiveFeatures:
        """The active features of one raw observation ``(obs_dim,)``."""
        if self._tiles is not None:  # NumPy only: no torch context to enter per step
            return ActiveFeatures(self._tiles(obs), None)
        return self._features_by_torch(obs)

    @torch.no_grad()
    def _features_by_torch(self, obs: np.ndarray) -> ActiveFeatures:
        x = torch.as_tensor(np.asarray(obs)).to(self._dtype).unsqueeze(0)
        if self.model.normalizer is not None:
            x = self.model.normalizer(x)
        if self._sparse is not None:  # hashed tiles: a repeated index counts twice
            indices, counts = np.unique(self._sparse(x)[0].numpy(), return_counts=True)
            return ActiveFeatures(indices, counts.astype(self.weight.dtype))
        return ActiveFeatures(self._all, self.model.features(x)[0].numpy())

    def values(self, x: ActiveFeatures) -> list[float]:
        """``w^T x`` for every row (every action of a Q model): ``out_dim`` floats."""
        active = self.weight[:, x.indices]
        values = active.sum(axis=1) if x.values is None else active @ x.values
        return (values if self.bias is None else values + self.bias).tolist()

    def value(self, x: ActiveFeatures, row: int) -> float:
        """``w[row]^T x``: the value of the input (and action ``row``)."""
        active = self.weight[row, x.indices]
        value = float(active.sum() if x.values is None else active @ x.values)
        return value if self.bias is None else value + float(self.bias[row])

    def begin_episode(self) -> None:
        """Clear the trace (and true online's ``Q_old``) at the start of an episode."""
        self._support.clear()
        if self.z_bias is not None:
            self.z_bias.fill(0.0)
        self.q_old = 0.0

    def update(self, x: ActiveFeatures, row: int, delta: float, q: float, q_next: float) -> None:
        """Apply one transition's update.

        Args:
            x: active features of S (of (S, A) in row ``row``).
            row: the action A for Q models, 0 for U.
            delta: the TD error δ = R + γ q_next − q.
            q: ``w^T x`` before this update.
            q_next: ``w^T x'`` of the next state (and action); 0 after a terminal one.
        """
        values = 1.0 if x.values is None else x.values
        if self.trace_decay == 0.0:  # λ = 0: every trace is x itself, w ← w + α δ x
            self.weight[row, x.indices] += self.alpha * delta * values
            if self.bias is not None:
                self.bias[row] += self.alpha * delta
            return
        if self.trace == "dutch":
            self._true_online_update(x, row, delta, q, q_next)
            return
        self._touch(row, x)
        self._support.decay(self.trace_decay)
        if self.trace == "accumulating":
            self.z[row, x.indices] += values  # indices are distinct
        else:
            self.z[row, x.indices] = values
        self._support.add_scaled(self.alpha * delta)
        if self.z_bias is not None:
            self.z_bias *= self.trace_decay
            self.z_bias[row] = self.z_bias[row] + 1.0 if self.trace == "accumulating" else 1.0
            self.bias += self.alpha * delta * self.z_bias

    def _touch(self, row: int, x: ActiveFeatures) -> None:
        if not self._support.dense:
            self._support.touch(row * self.weight.shape[1] + x.indices)

    def _true_online_update(
        self, x: ActiveFeatures, row: int, delta: float, q: float, q_next: float
    ) -> None:
        alpha, decay = self.alpha, self.trace_decay
        values = 1.0 if x.values is None else x.values
        z_active = self.z[row, x.indices]
        z_dot_x = float(z_active.sum() if x.values is None else z_active @ x.values)
        if self.z_bias is not None:
            z_dot_x += float(self.z_bias[row])
        coefficient = 1.0 - alpha * decay * z_dot_x
        self._touch(row, x)
        self._support.decay(decay)
        self.z[row, x.indices] += coefficient * values
        correction = q - self.q_old
        self._support.add_scaled(alpha * (delta + correction))
        self.weight[row, x.indices] -= alpha * correction * values
        if self.z_bias is not None:
            self.z_bias *= decay
            self.z_bias[row] += coefficient
            self.bias += alpha * (delta + correction) * self.z_bias
            self.bias[row] -= alpha * correction
        self.q_old = q_next


class GradientLearner:
    r"""Semi-gradient TD(λ) for any differentiable approximator, one trace per parameter.

    .. math:: z \leftarrow \gamma\lambda z + \nabla_w \hat q(S, A, w), \qquad
              w \leftarrow w + \alpha \delta z

    Args:
        model: an ``nn.Module`` mapping ``(1, *obs_shape)`` to ``(1, out_dim)``.
        alpha: the step size α > 0.
        trace_decay: γλ in ``[0, 1]``.
    """

    trace = "accumulating"

    def __init__(self, model: nn.Module, alpha: float, trace_decay: float) -> None:
        self.model = model
        self.alpha = check_range("alpha", alpha, low=0.0, low_inclusive=False)
        self.trace_decay = check_range("trace_decay", trace_decay, low=0.0, high=1.0)
        self.parameters = [p for p in model.parameters() if p.requires_grad]
        self.z = [torch.zeros_like(p) for p in self.parameters]
        first = self.parameters[0]
        self._dtype, self._device = first.dtype, first.device
        self._largest = torch.finfo(first.dtype).max
        self.num_active_features = sum(p.numel() for p in self.parameters)

    def features(self, obs: np.ndarray) -> torch.Tensor:
        """The network's input: one observation as a batch of one ``(1, *obs_shape)``."""
        x = torch.as_tensor(np.asarray(obs), device=self._device)
        return (x.to(self._dtype) if x.is_floating_point() else x).unsqueeze(0)

    @torch.no_grad()
    def values(self, x: torch.Tensor) -> list[float]:
        """The network's ``out_dim`` outputs for the input."""
        return self.model(x)[0].tolist()

    def value(self, x: torch.Tensor, row: int) -> float:
        """Output ``row`` for the input."""
        return self.values(x)[row]

    def begin_episode(self) -> None:
        """Clear the traces."""
        for z in self.z:
            z.zero_()

    def update(self, x: torch.Tensor, row: int, delta: float, q: float, q_next: float) -> None:
        """Apply one transition's update (``q`` and ``q_next`` are not needed here)."""
        step = self.alpha * delta
        if not abs(step) <= self._largest:  # also NaN
            raise DivergenceError(
                f"the TD error reached {delta:.3g}: the updates diverged; {divergence_advice(self)}"
            )
        gradients = torch.autograd.grad(self.model(x)[0, row], self.parameters)
        with torch.no_grad():
            for parameter, z, gradient in zip(self.parameters, self.z, gradients, strict=True):
                z.mul_(self.trace_decay).add_(gradient)
                parameter.add_(z, alpha=step)


def divergence_advice(learner: LinearLearner | GradientLearner) -> str:
    """What to change when the learner's updates diverged, for the end of a message."""
    if isinstance(learner, GradientLearner):
        return "try a smaller algo.alpha (about 1e-3 for neural nets)"
    if learner.trace_decay == 0.0:  # every trace is x itself: only α matters
        return "try a smaller algo.alpha"
    if learner.trace == "accumulating":  # on revisited states z grows to 1 / (1 - γλ)
        return "try a smaller algo.alpha or algo.lam, or algo.true_online=true"
    return "try a smaller algo.alpha or algo.lam"


def make_learner(
    model: nn.Module, alpha: float, trace_decay: float, trace: str
) -> LinearLearner | GradientLearner:
    """The learner for ``model``: by active features if it is linear, else by autograd.

    Raises:
        ValueError: for replacing or dutch traces on a model that is not a
            :class:`~rlapprox.approximators.LinearApproximator`.
    """
    check_choice("trace", trace, TRACES)
    if isinstance(model, LinearApproximator):
        return LinearLearner(model, alpha, trace_decay, trace)
    if trace != "accumulating":
        raise ValueError(
            f"trace={trace!r} needs a linear approximator (linear_tiles, linear_fourier, ...); "
            f"{type(model).__name__} learns with trace='accumulating'"
        )
    return GradientLearner(model, alpha, trace_decay)
