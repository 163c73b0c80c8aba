"""Our clip_grad_norm_ gives torch.nn.utils.clip_grad_norm_'s result bit for bit."""

import pytest
import torch

from rlapprox.algos.gradients import clip_grad_norm_
from rlapprox.approximators import MLP


def _with_grads(seed: int, scale: float) -> list[torch.nn.Parameter]:
    torch.manual_seed(seed)
    net = MLP(5, 3, hidden_sizes=(32, 17))
    params = list(net.parameters())
    for param in params:
        param.grad = torch.randn_like(param) * scale
    params[1].grad = None  # a parameter without a gradient is skipped
    return params


@pytest.mark.parametrize(
    ("seed", "scale", "max_norm"), [(0, 1.0, 0.5), (1, 0.01, 10.0), (2, 3.0, 1.0)]
)
def test_clip_matches_torch_bit_for_bit(seed, scale, max_norm):
    ours, reference = _with_grads(seed, scale), _with_grads(seed, scale)
    norm = clip_grad_norm_(ours, max_norm)
    expected = torch.nn.utils.clip_grad_norm_(reference, max_norm)
    assert torch.equal(norm, expected)
    for mine, theirs in zip(ours, reference, strict=True):
        if theirs.grad is None:
            assert mine.grad is None
        else:
            assert torch.equal(mine.grad, theirs.grad)


def test_clipped_norm_is_max_norm_and_small_gradients_stay():
    params = _with_grads(3, 5.0)
    norm = clip_grad_norm_(params, 2.0)
    grads = [p.grad for p in params if p.grad is not None]
    assert norm > 2.0
    assert torch.linalg.vector_norm(
        torch.cat([g.flatten() for g in grads])
    ).item() == pytest.approx(2.0, rel=1e-5)
    before = [g.clone() for g in grads]
    clip_grad_norm_(params, 100.0)  # already below: scaled by exactly 1
    assert all(torch.equal(b, g) for b, g in zip(before, grads, strict=True))


def test_no_gradients_gives_zero_norm():
    params = [torch.nn.Parameter(torch.ones(3))]
    assert clip_grad_norm_(params, 1.0).item() == 0.0
