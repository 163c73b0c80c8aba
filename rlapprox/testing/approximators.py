"""``check_feature_map`` and ``check_approximator``: shapes, dtypes, devices, state dicts."""

from __future__ import annotations

import copy
import io
from collections.abc import Sequence

import torch
from torch import nn

from rlapprox.core.validation import check_positive_int
from rlapprox.testing.assertions import require


def _check_output(
    module: nn.Module,
    out: object,
    shape: tuple[int, ...],
    dtype: torch.dtype,
    device: torch.device,
    context: str,
) -> torch.Tensor:
    require(isinstance(out, torch.Tensor), module, f"{context}: returned {type(out).__name__}")
    assert isinstance(out, torch.Tensor)
    require(
        tuple(out.shape) == shape,
        module,
        f"{context}: output shape {tuple(out.shape)}, expected {shape}",
    )
    require(out.dtype == dtype, module, f"{context}: output dtype {out.dtype}, expected {dtype}")
    require(
        out.device.type == device.type,
        module,
        f"{context}: output on {out.device}, expected {device}",
    )
    require(bool(torch.isfinite(out).all()), module, f"{context}: output is not finite")
    return out


def check_feature_map(
    feature_map: nn.Module,
    batch_size: int = 7,
    seed: int = 0,
    *,
    device: str | torch.device = "cpu",
) -> None:
    """Check that a feature map honours the contract of :class:`rlapprox.features.FeatureMap`.

    On a seeded batch from the unit box (its first two rows are the corners ``0`` and ``1``)
    it checks that the map:

    - has integer ``in_dim`` and ``num_features`` and no trainable parameters;
    - returns ``(batch_size, num_features)`` finite values whose dtype follows the input's
      (float32 and float64) and whose device is the input's;
    - is deterministic and leaves its input unchanged;
    - is batch-invariant: row ``i`` of a batch equals the output for row ``i`` alone;
    - still works after ``.to(torch.float64)``, with the same values.

    Args:
        feature_map: the map to check (a deep copy is used).
        batch_size: rows in the test batch, at least 1.
        seed: seed of the test batch.
        device: where to run the checks.

    Raises:
        AssertionError: naming the map and the property it breaks.

    Examples:
        >>> from rlapprox.features import FeatureMap, FourierBasis
        >>> check_feature_map(FourierBasis(2, order=3))  # passes silently
        >>> class Centred(FeatureMap):  # each row depends on the whole batch
        ...     num_features = 1
        ...     def forward(self, x):
        ...         return x - x.mean(0)
        >>> check_feature_map(Centred(1))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        AssertionError: Centred: not batch-invariant: ...
    """
    check_positive_int("batch_size", batch_size)
    device = torch.device(device)
    in_dim = getattr(feature_map, "in_dim", None)
    num_features = getattr(feature_map, "num_features", None)
    for name, value in (("in_dim", in_dim), ("num_features", num_features)):
        require(
            isinstance(value, int) and value >= 1,
            feature_map,
            f"{name} must be a positive int, got {value!r}",
        )
    assert isinstance(in_dim, int)
    assert isinstance(num_features, int)
    trainable = [name for name, p in feature_map.named_parameters() if p.requires_grad]
    require(not trainable, feature_map, f"has trainable parameters {trainable}")

    fmap = copy.deepcopy(feature_map).to(device)
    generator = torch.Generator().manual_seed(seed)
    x64 = torch.rand(batch_size, in_dim, generator=generator, dtype=torch.float64)
    x64[0] = 0.0
    if batch_size > 1:
        x64[1] = 1.0
    x64 = x64.to(device)
    shape = (batch_size, num_features)
    outputs = {}
    with torch.no_grad():
        for dtype in (torch.float32, torch.float64):
            x = x64.to(dtype)
            before = x.clone()
            out = _check_output(fmap, fmap(x), shape, dtype, device, f"{dtype} input")
            require(torch.equal(x, before), fmap, f"forward modified its {dtype} input in place")
            require(torch.equal(fmap(x), out), fmap, f"two forwards on {dtype} differ")
            outputs[dtype] = out
        reference = outputs[torch.float64]
        tolerance = 1e-10 * max(1.0, reference.abs().max().item())
        for i in range(batch_size):
            single = fmap(x64[i : i + 1])
            error = (single[0] - reference[i]).abs().max().item()
            require(
                error <= tolerance,
                fmap,
                f"not batch-invariant: row {i} alone differs from row {i} of the batch by "
                f"{error:.3g}",
            )
        widened = copy.deepcopy(feature_map).to(torch.float64).to(device)
        out = _check_output(widened, widened(x64), shape, torch.float64, device, ".to(float64)")
        error = (out - reference).abs().max().item()
        require(
            error <= tolerance,
            fmap,
            f"after .to(torch.float64) the output changed by {error:.3g}",
        )


def _floating_dtype(module: nn.Module) -> torch.dtype:
    for tensor in (*module.parameters(), *module.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.get_default_dtype()


def check_approximator(
    module: nn.Module,
    input_shape: Sequence[int],
    out_dim: int,
    seed: int = 0,
    *,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
) -> None:
    """Check that an approximator honours the contract of :mod:`rlapprox.approximators`.

    On a seeded batch of inputs uniform in ``[0, 1)``, of shape ``(batch_size, *input_shape)``
    and in the module's floating dtype, it checks that:

    - train- and eval-mode outputs are finite, ``(batch_size, out_dim)``, in the module's
      dtype and on the input's device (and ``module.out_dim``, if set, equals ``out_dim``);
    - two eval-mode forwards are equal, and eval mode is batch-invariant;
    - after ``.double()`` the output is float64, finite and close to the original;
    - a ``state_dict``, saved and loaded with ``weights_only=True`` into a copy whose
      parameters and buffers were perturbed, reproduces the eval outputs exactly;
    - after a backward of the summed train-mode output every trainable parameter has a finite
      gradient.

    Seeded construction is the caller's part: build the module after ``torch.manual_seed``.

    Args:
        module: the approximator (a deep copy is used).
        input_shape: shape of one input, e.g. ``(obs_dim,)`` or ``(C, H, W)``.
        out_dim: expected number of outputs.
        seed: seed of the test batch and of the perturbation.
        batch_size: rows in the test batch, at least 2 (batch norm needs two).
        device: where to run the checks.

    Raises:
        AssertionError: naming the module and the property it breaks.

    Examples:
        >>> from rlapprox.approximators import MLP
        >>> _ = torch.manual_seed(0)
        >>> check_approximator(MLP(3, 2, hidden_sizes=(16,)), (3,), 2)  # passes silently
        >>> check_approximator(MLP(3, 2, hidden_sizes=(16,)), (3,), 4)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        AssertionError: MLP: out_dim is 2, expected 4
    """
    check_positive_int("batch_size", batch_size, minimum=2)
    check_positive_int("out_dim", out_dim)
    device = torch.device(device)
    declared = getattr(module, "out_dim", out_dim)
    require(declared == out_dim, module, f"out_dim is {declared}, expected {out_dim}")

    net = copy.deepcopy(module).to(device)
    dtype = _floating_dtype(net)
    generator = torch.Generator().manual_seed(seed)
    shape = (batch_size, *(int(size) for size in input_shape))
    x = torch.rand(shape, generator=generator, dtype=torch.float64).to(device, dtype)
    expected = (batch_size, out_dim)

    net.train()
    with torch.no_grad():
        _check_output(net, net(x), expected, dtype, device, "train mode")
    net.eval()
    with torch.no_grad():
        y = _check_output(net, net(x), expected, dtype, device, "eval mode")
        require(torch.equal(net(x), y), net, "two eval-mode forwards differ")
        scale = max(1.0, y.abs().max().item())
        _check_double(net, x, y, scale)
        _check_state_dict_round_trip(net, x, y, generator)
    _check_gradients(net, x)


def _check_double(net: nn.Module, x: torch.Tensor, y: torch.Tensor, scale: float) -> None:
    wide = copy.deepcopy(net).double().eval()
    x64 = x.double()
    y64 = _check_output(wide, wide(x64), tuple(y.shape), torch.float64, x.device, ".double()")
    error = (y64 - y.double()).abs().max().item()
    require(
        error <= 1e-3 * scale,
        net,
        f"after .double() the output changed by {error:.3g}",
    )
    rows = torch.cat([wide(x64[i : i + 1]) for i in range(len(x64))])
    error = (rows - y64).abs().max().item()
    require(
        error <= 1e-9 * scale,
        net,
        f"eval mode is not batch-invariant: rows alone differ from the batch by {error:.3g}",
    )


def _check_state_dict_round_trip(
    net: nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator
) -> None:
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    buffer.seek(0)
    try:
        state = torch.load(buffer, weights_only=True)
    except Exception as error:  # weights_only raises UnpicklingError (and others) on objects
        raise AssertionError(
            f"{type(net).__name__}: its state_dict does not load with weights_only=True: "
            f"{str(error).splitlines()[0]}"
        ) from error
    fresh = copy.deepcopy(net)
    for tensor in fresh.state_dict(keep_vars=True).values():  # non-persistent buffers stay
        if tensor.is_floating_point():
            noise = torch.rand(tensor.shape, generator=generator, dtype=torch.float64)
            tensor.add_((noise + 0.5).to(tensor.device, tensor.dtype))
    fresh.load_state_dict(state)
    fresh.eval()
    require(
        torch.equal(fresh(x), y),
        net,
        "a perturbed copy loaded with the state_dict does not reproduce the outputs",
    )


def _check_gradients(net: nn.Module, x: torch.Tensor) -> None:
    net.train()
    net.zero_grad(set_to_none=True)
    net(x).sum().backward()
    trainable = [(name, p) for name, p in net.named_parameters() if p.requires_grad]
    missing = [name for name, p in trainable if p.grad is None]
    require(not missing, net, f"no gradient reaches parameters {missing}")
    bad = [name for name, p in trainable if not torch.isfinite(p.grad).all()]  # type: ignore[arg-type]
    require(not bad, net, f"non-finite gradients in parameters {bad}")


_F64 = torch.float64
