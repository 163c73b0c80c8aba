"""Gradient-norm clipping for the parameters of one network, or of K stacked networks."""

from __future__ import annotations

from collections.abc import Sequence

import torch


@torch.no_grad()
def clip_grad_norm_(parameters: Sequence[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Scale the gradients in place so that their joint L2 norm is at most ``max_norm``.

    The maths and the result of :func:`torch.nn.utils.clip_grad_norm_` with its defaults
    (``norm_type=2``, gradients multiplied by ``min(max_norm / (norm + 1e-6), 1)``), bit for
    bit, for parameters on one device. Torch's version also serves parameters spread over
    devices and dtypes: the grouping, support checks and conversions that this needs cost it
    about 65 µs a call in a loop of CartPole DQN updates, where the arithmetic takes 10 (2% of
    a whole 50k-step run's wall time).

    Args:
        parameters: the parameters whose ``.grad`` to clip; those without a gradient are
            skipped.
        max_norm: the largest norm the gradients keep.

    Returns:
        The norm of all the gradients before clipping, a scalar tensor on their device (0 when
        no parameter has a gradient).
    """
    grads = [param.grad for param in parameters if param.grad is not None]
    if not grads:
        return torch.zeros(())
    total_norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    torch._foreach_mul_(grads, torch.clamp(max_norm / (total_norm + 1e-6), max=1.0))
    return total_norm


@torch.no_grad()
def clip_stacked_grad_norms_(parameters: Sequence[torch.Tensor], max_norm: float) -> torch.Tensor:
    """:func:`clip_grad_norm_` for K networks at once, each on its own gradients' norm.

    Args:
        parameters: stacked parameters ``(K, *shape)`` (see
            :class:`~rlapprox.approximators.stacked.StackedNetworks`); slice ``k`` of each is
            network ``k``'s. Those without a gradient are skipped.
        max_norm: the largest norm each network's gradients keep.

    Returns:
        Each network's gradient norm before clipping, shape ``(K,)``.
    """
    grads = [param.grad for param in parameters if param.grad is not None]
    if not grads:
        return torch.zeros(len(parameters[0]) if parameters else 0)
    norms = torch.stack([torch.linalg.vector_norm(g.flatten(1), dim=1) for g in grads])
    total_norms = torch.linalg.vector_norm(norms, dim=0)
    scale = torch.clamp(max_norm / (total_norms + 1e-6), max=1.0)
    for grad in grads:
        grad.mul_(scale.view(-1, *([1] * (grad.dim() - 1))))
    return total_norms


def set_learning_rates(
    optimizer: torch.optim.Optimizer, initial_lrs: Sequence[float], factor: float
) -> None:
    """Set each parameter group's learning rate to ``factor`` times its initial one."""
    if factor == 1.0:  # a constant schedule: leave the rates alone
        return
    for group, initial in zip(optimizer.param_groups, initial_lrs, strict=True):
        group["lr"] = initial * factor
