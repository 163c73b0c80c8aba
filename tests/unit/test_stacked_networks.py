"""StackedNetworks: K alike modules as one batched network that computes what each would alone."""

import copy

import pytest
import torch
from torch import nn

from rlapprox.algos.gradients import clip_grad_norm_, clip_stacked_grad_norms_
from rlapprox.approximators import (
    MLP,
    ConvNet,
    DuelingQ,
    FourierBasis,
    LinearApproximator,
    TileCoding,
)
from rlapprox.approximators.stacked import StackedNetworks

K = 3
SEEDS = (0, 1, 2)


def _linear(features):
    model = LinearApproximator(features, 3)
    # a linear model starts at zero weights: K equal zero models would hide any mix-up of the
    # networks, so give each its own random weights
    nn.init.normal_(model.linear.weight)
    nn.init.normal_(model.linear.bias)
    return model


# name: (builder, input shape of one observation, the mode the stack should choose)
ARCHITECTURES = {
    "mlp": (lambda: MLP(4, 3, hidden_sizes=(8, 8)), (4,), "batched_linear"),
    "dropout": (lambda: MLP(4, 3, hidden_sizes=(8, 8), dropout=0.2), (4,), "batched_linear"),
    "layer_norm": (lambda: MLP(4, 3, hidden_sizes=(8, 8), norm="layer"), (4,), "vmap"),
    "batch_norm": (lambda: MLP(4, 3, hidden_sizes=(8, 8), norm="batch"), (4,), "vmap"),
    # skips are elementwise: the batched linear copy serves residual MLPs too
    "residual": (lambda: MLP(4, 3, hidden_sizes=(8, 8), residual=True), (4,), "batched_linear"),
    # DuelingQ slices dim 1, the batch dimension of a (K, B, A+1) output: vmap
    "dueling": (lambda: DuelingQ(MLP(4, 4, hidden_sizes=(8,)), num_actions=3), (4,), "vmap"),
    # FourierBasis checks for 2-d inputs, so the batched linear copy fails its probe: vmap
    "fourier": (lambda: _linear(FourierBasis(2, order=3)), (2,), "vmap"),
    # sparse features cannot be vmapped
    "tiles": (
        lambda: _linear(TileCoding(2, num_tilings=4, tiles_per_dim=4)),
        (2,),
        "loop",
    ),
    "convnet": (
        lambda: ConvNet(
            (2, 6, 6), 3, channels=(4,), kernel_sizes=(3,), strides=(1,), hidden_sizes=(8,)
        ),
        (2, 6, 6),
        "vmap",
    ),
}
# modules whose forward is random in training mode
STOCHASTIC = {"dropout"}


def _modules(name, seeds=SEEDS):
    build = ARCHITECTURES[name][0]
    modules = []
    for seed in seeds:
        torch.manual_seed(seed)
        modules.append(build())
    return modules


def _stack(modules, input_shape):
    return StackedNetworks(modules, input_shape)


def _inputs(input_shape, batch=6, seed=123):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand((K, batch, *input_shape), generator=generator)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_stack_gives_each_modules_own_outputs_in_eval_mode(name):
    _, input_shape, expected_mode = ARCHITECTURES[name]
    modules = _modules(name)
    fresh = [copy.deepcopy(m).eval() for m in modules]  # never touched by the stack
    stacked = _stack(modules, input_shape)
    assert stacked.mode == expected_mode
    assert stacked.num_networks == K
    stacked.train(False)
    assert not stacked.training
    x = _inputs(input_shape)
    out = stacked(x)
    expected = torch.stack([m(xk) for m, xk in zip(fresh, x, strict=True)])
    assert out.shape == (K, 6, 3)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    # the K networks really are different (seeded apart): a mix-up would show
    assert not torch.allclose(expected[0], expected[1])
    # the stacked leaves hold (K, *shape) copies of each module's parameters
    fresh_params = [dict(m.named_parameters()) for m in fresh]
    assert stacked.names == list(fresh_params[0])
    for param_name, stacked_param in zip(stacked.names, stacked.parameters, strict=True):
        assert stacked_param.is_leaf
        for k in range(K):
            assert torch.equal(stacked_param[k], fresh_params[k][param_name])


@pytest.mark.parametrize("name", sorted(set(ARCHITECTURES) - STOCHASTIC))
def test_stack_gives_each_modules_own_outputs_in_training_mode(name):
    # batch norm normalises with batch statistics in training mode: each network's own batch
    _, input_shape, _ = ARCHITECTURES[name]
    modules = _modules(name)
    fresh = [copy.deepcopy(m).train() for m in modules]
    stacked = _stack(modules, input_shape)
    stacked.train(True)
    assert stacked.training
    x = _inputs(input_shape)
    out = stacked(x)
    expected = torch.stack([m(xk) for m, xk in zip(fresh, x, strict=True)])
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    # buffers (batch norm's running statistics) move as each module's own would
    for k, module in enumerate(modules):
        for (buffer_name, buffer), fresh_buffer in zip(
            module.named_buffers(), fresh[k].buffers(), strict=True
        ):
            torch.testing.assert_close(buffer, fresh_buffer, rtol=1e-6, atol=1e-6, msg=buffer_name)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_gradient_of_summed_losses_is_each_networks_own_gradient(name):
    _, input_shape, _ = ARCHITECTURES[name]
    modules = _modules(name)
    fresh = [copy.deepcopy(m) for m in modules]
    stacked = _stack(modules, input_shape)
    training = name not in STOCHASTIC  # dropout's masks are random: compare in eval mode
    stacked.train(training)
    for module in fresh:
        module.train(training)
    x = _inputs(input_shape)
    targets = torch.randn(K, 6, 3, generator=torch.Generator().manual_seed(5))
    losses = ((stacked(x) - targets) ** 2).mean(dim=(1, 2))  # (K,)
    losses.sum().backward()
    for k, module in enumerate(fresh):
        loss = ((module(x[k]) - targets[k]) ** 2).mean()
        torch.testing.assert_close(losses[k].detach(), loss.detach(), rtol=1e-5, atol=1e-6)
        loss.backward()
        grads = {n: p.grad for n, p in module.named_parameters()}
        for param_name, stacked_param in zip(stacked.names, stacked.parameters, strict=True):
            assert stacked_param.grad is not None, param_name
            assert grads[param_name] is not None, param_name
            torch.testing.assert_close(
                stacked_param.grad[k], grads[param_name], rtol=1e-5, atol=1e-6, msg=param_name
            )
    # the modules' own parameters (views of the stack) take no part in the stack's graph
    assert all(p.grad is None for m in modules for p in m.parameters())


def test_modules_parameters_are_views_of_the_stack():
    modules = _modules("batch_norm")
    stacked = _stack(modules, (4,))
    weight_index = stacked.names.index("output_layer.weight")
    with torch.no_grad():
        stacked.parameters[weight_index][1].fill_(7.0)
    assert torch.equal(modules[1].state_dict()["output_layer.weight"], torch.full((3, 8), 7.0))
    assert not torch.equal(modules[0].output_layer.weight, torch.full((3, 8), 7.0))
    assert not torch.equal(modules[2].output_layer.weight, torch.full((3, 8), 7.0))

    # a module's load_state_dict writes into its slice of the stack, parameters and buffers
    state = {name: torch.full_like(t, 0.25) for name, t in modules[2].state_dict().items()}
    state["hidden_layers.0.1.num_batches_tracked"] = torch.tensor(4)
    before_0 = [p[0].clone() for p in stacked.parameters]
    modules[2].load_state_dict(state)
    for param_name, stacked_param in zip(stacked.names, stacked.parameters, strict=True):
        assert torch.equal(stacked_param[2], torch.full_like(stacked_param[2], 0.25)), param_name
    for before, stacked_param in zip(before_0, stacked.parameters, strict=True):
        assert torch.equal(stacked_param[0], before)
    buffers = dict(zip(stacked.buffer_names, stacked.buffers, strict=True))
    assert torch.equal(buffers["hidden_layers.0.1.running_mean"][2], torch.full((8,), 0.25))
    assert buffers["hidden_layers.0.1.num_batches_tracked"].tolist() == [0, 0, 4]
    # and the stack computes with the loaded weights
    stacked.train(False)
    x = _inputs((4,))
    reference = MLP(4, 3, hidden_sizes=(8, 8), norm="batch")
    reference.load_state_dict(state)
    torch.testing.assert_close(stacked(x)[2], reference.eval()(x[2]), rtol=1e-5, atol=1e-5)


def test_optimizer_step_on_the_stack_moves_each_module():
    modules = _modules("mlp")
    stacked = _stack(modules, (4,))
    x = _inputs((4,))
    optimizer = torch.optim.SGD(stacked.parameters, lr=0.1)
    stacked(x).pow(2).sum().backward()
    before = [m.output_layer.weight.clone() for m in modules]
    optimizer.step()
    for k, module in enumerate(modules):
        assert torch.equal(module.output_layer.weight, stacked.parameters[-2][k])
        assert not torch.equal(module.output_layer.weight, before[k])
        # the module alone now computes what the stack computes
        torch.testing.assert_close(module(x[k]), stacked(x)[k], rtol=1e-5, atol=1e-5)


def test_copy_from_copies_at_tau_one_and_averages_at_half():
    target = _stack(_modules("batch_norm", seeds=(10, 11, 12)), (4,))
    online_modules = _modules("batch_norm")
    online = _stack(online_modules, (4,))
    online.train(True)
    online(_inputs((4,)))  # move the running statistics off their initial values
    original = [p.detach().clone() for p in target.parameters]

    target.copy_from(online, tau=0.5)
    for mine, theirs, before in zip(target.parameters, online.parameters, original, strict=True):
        torch.testing.assert_close(mine, (theirs + before) / 2, rtol=1e-6, atol=1e-7)
    # buffers are copied as they are
    for mine, theirs in zip(target.buffers, online.buffers, strict=True):
        assert torch.equal(mine, theirs)

    target.copy_from(online, tau=1.0)
    for mine, theirs in zip(target.parameters, online.parameters, strict=True):
        assert torch.equal(mine, theirs)
        assert mine.grad is None  # no_grad: nothing recorded
    # the target's modules see the copy
    for k, module in enumerate(target.modules):
        for (name, tensor), (_, theirs) in zip(
            module.state_dict().items(), online_modules[k].state_dict().items(), strict=True
        ):
            assert torch.equal(tensor, theirs), name


def _stacked_grads(scales, seed=0):
    """K networks' stacked parameters whose gradients are random times each network's scale."""
    generator = torch.Generator().manual_seed(seed)
    shapes = [(5, 4), (5,), (3, 5), (3,)]
    params = []
    for shape in shapes:
        param = torch.zeros(K, *shape, requires_grad=True)
        grad = torch.randn(K, *shape, generator=generator)
        param.grad = grad * torch.tensor(scales).view(-1, *([1] * len(shape)))
        params.append(param)
    return params


def test_stacked_clipping_equals_clipping_each_network_alone():
    max_norm = 1.0
    scales = (5.0, 0.01, 2.0)  # network 1 is below the max norm
    stacked = _stacked_grads(scales)
    alone = [[torch.nn.Parameter(p[k].detach().clone()) for p in stacked] for k in range(K)]
    for k in range(K):
        for param, stacked_param in zip(alone[k], stacked, strict=True):
            param.grad = stacked_param.grad[k].clone()
    unclipped_1 = [p.grad[1].clone() for p in stacked]

    norms = clip_stacked_grad_norms_(stacked, max_norm)
    assert norms.shape == (K,)
    for k in range(K):
        expected_norm = clip_grad_norm_(alone[k], max_norm)
        torch.testing.assert_close(norms[k], expected_norm, rtol=1e-6, atol=0)
        for param, stacked_param in zip(alone[k], stacked, strict=True):
            torch.testing.assert_close(stacked_param.grad[k], param.grad, rtol=1e-6, atol=1e-8)
    assert norms[0] > max_norm
    assert norms[2] > max_norm
    assert norms[1] < max_norm
    # the small network is left exactly as it was; the others end at the max norm
    for grad, before in zip((p.grad[1] for p in stacked), unclipped_1, strict=True):
        assert torch.equal(grad, before)
    for k in (0, 2):
        clipped = torch.linalg.vector_norm(torch.cat([p.grad[k].flatten() for p in stacked]))
        assert clipped.item() == pytest.approx(max_norm, rel=1e-5)


def test_stacked_clipping_skips_parameters_without_gradients():
    stacked = _stacked_grads((3.0, 3.0, 0.1), seed=1)
    stacked[1].grad = None
    with_grads = [p for p in stacked if p.grad is not None]
    reference = [p.grad.clone() for p in with_grads]
    norms = clip_stacked_grad_norms_(stacked, 0.5)
    expected = torch.linalg.vector_norm(
        torch.stack([torch.linalg.vector_norm(g.flatten(1), dim=1) for g in reference]), dim=0
    )
    torch.testing.assert_close(norms, expected)
    assert stacked[1].grad is None
    none = [torch.zeros(K, 2, requires_grad=True)]
    assert torch.equal(clip_stacked_grad_norms_(none, 1.0), torch.zeros(K))


def test_mismatched_modules_raise():
    torch.manual_seed(0)
    with pytest.raises(ValueError, match="built alike"):
        StackedNetworks([MLP(4, 2, hidden_sizes=(8,)), MLP(4, 2, hidden_sizes=(16,))])
    with pytest.raises(ValueError, match="built alike"):
        StackedNetworks([MLP(4, 2, hidden_sizes=(8,)), MLP(4, 2, hidden_sizes=(8, 8))])
    with pytest.raises(ValueError, match="built alike"):  # other names (layer norm weights)
        StackedNetworks([MLP(4, 2, hidden_sizes=(8,)), MLP(4, 2, hidden_sizes=(8,), norm="layer")])
    with pytest.raises(ValueError, match="at least one"):
        StackedNetworks([])
