"""CUDA gives the CPU's answers: models, FVI, DQN updates and whole CLI runs on the GPU.

Skipped where CUDA is not available (as in CI); ``scripts/check_cuda.py`` runs them on a GPU
machine together with the speed comparison.
"""

import copy
import functools
import json
import math

import pytest
import torch

import rlapprox
from rlapprox.algos.dqn import DQN, DQNConfig
from rlapprox.algos.fvi import FittedValueIteration, FVIConfig
from rlapprox.app.train import train
from rlapprox.approximators import MLP, BoxNormalizer, ConvNet, linear_multilinear
from rlapprox.data.replay import TransitionBatch
from rlapprox.envs import make_env, make_vector_env
from rlapprox.models import MODELS, make_model

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

CUDA = torch.device("cuda")
PAIRS = 10_000


@pytest.mark.parametrize("env_id", sorted(MODELS))
def test_model_steps_equal_on_cpu_and_cuda(env_id):
    model = make_model(env_id)
    generator = torch.Generator().manual_seed(0)
    states = model.sample_states(PAIRS, generator)
    actions = torch.randint(model.num_actions, (PAIRS,), generator=generator)
    noise_seed = 1  # stochastic models (noisy LQR) draw from their generator: compare means
    cpu = model.step(states, actions, torch.Generator().manual_seed(noise_seed))
    gpu = model.step(
        states.to(CUDA), actions.to(CUDA), torch.Generator(CUDA).manual_seed(noise_seed)
    )
    if getattr(model, "noise_std", 0.0):
        pytest.skip("a noisy model draws different noise on each device")
    torch.testing.assert_close(gpu[0].cpu(), cpu[0], rtol=0, atol=1e-9)
    torch.testing.assert_close(gpu[1].cpu(), cpu[1], rtol=0, atol=1e-9)
    assert torch.equal(gpu[2].cpu(), cpu[2])
    torch.testing.assert_close(
        model.observe(states.to(CUDA)).cpu(), model.observe(states), rtol=0, atol=1e-9
    )


def _fvi(device: torch.device) -> FittedValueIteration:
    model = make_model("MountainCar-v0")
    normalizer = BoxNormalizer(model.state_low, model.state_high)
    approximator = linear_multilinear(2, 1, points_per_dim=15, normalizer=normalizer).double()
    config = FVIConfig(
        gamma=0.99, sampling="vertices", value_inputs="states", num_iterations=50, eval_episodes=3
    )
    return FittedValueIteration(
        approximator, model, config, eval_env_fn=lambda: make_env("MountainCar-v0"), device=device
    )


def test_fitted_value_iteration_on_cuda_equals_cpu():
    cpu, gpu = _fvi(torch.device("cpu")), _fvi(CUDA)
    cpu_result, gpu_result = cpu.run(), gpu.run()
    assert next(gpu.approximator.parameters()).device.type == CUDA.type
    states = make_model("MountainCar-v0").sample_states(1000, torch.Generator().manual_seed(3))
    torch.testing.assert_close(
        gpu.value_of_states(states.to(CUDA)).cpu(), cpu.value_of_states(states), rtol=0, atol=1e-6
    )
    assert gpu_result.metrics["eval_return_mean"] == cpu_result.metrics["eval_return_mean"]


def _dqn(network: torch.nn.Module, device: torch.device, double_dqn: bool = True) -> DQN:
    config = DQNConfig(
        total_steps=2_000, batch_size=32, learning_starts=500, train_freq=4, gradient_steps=2,
        target_update_interval=100, double_dqn=double_dqn, loss="huber", eval_every=0,
        eval_episodes=2, checkpoint_every=0,
    )  # fmt: skip
    return DQN(
        network,
        make_vector_env("CartPole-v1", 1),
        lambda: make_env("CartPole-v1"),
        functools.partial(torch.optim.Adam, lr=1e-3),
        config,
        seed=0,
        device=device,
    )


@pytest.mark.parametrize("double_dqn", [False, True])
def test_dqn_updates_on_cuda_equal_cpu(double_dqn):
    torch.manual_seed(0)
    network = MLP(4, 2, [64, 64], activation="relu")
    cpu = _dqn(copy.deepcopy(network), torch.device("cpu"), double_dqn)
    gpu = _dqn(copy.deepcopy(network), CUDA, double_dqn)  # Module.to moves in place: copies
    generator = torch.Generator().manual_seed(1)
    for _ in range(5):
        batch = TransitionBatch(
            obs=torch.randn(32, 4, generator=generator),
            actions=torch.randint(2, (32,), generator=generator),
            rewards=torch.ones(32),
            next_obs=torch.randn(32, 4, generator=generator),
            terminated=(torch.rand(32, generator=generator) < 0.1).float(),
            discounts=torch.full((32,), 0.99),
        )
        with torch.no_grad():
            next_q_cpu = cpu.target_network(batch.next_obs)
        cpu_stats = cpu.update(batch, next_q_cpu)
        gpu_batch = TransitionBatch(*(column.to(CUDA) for column in batch))
        gpu_stats = gpu.update(gpu_batch, gpu.target_network(gpu_batch.next_obs).detach())
        torch.testing.assert_close(gpu_stats["loss"].cpu(), cpu_stats["loss"], rtol=1e-5, atol=1e-6)
    for name, value in cpu.q_network.state_dict().items():
        torch.testing.assert_close(
            gpu.q_network.state_dict()[name].cpu(), value, atol=1e-5, rtol=1e-4
        )


def test_dqn_run_keeps_everything_on_cuda():
    torch.manual_seed(0)
    dqn = _dqn(MLP(4, 2, [64, 64], activation="relu"), CUDA)
    result = dqn.run()
    assert result.metrics["env_steps"] == 2_000
    assert result.metrics["gradient_steps_done"] > 0
    assert dqn.buffer.obs.device.type == CUDA.type
    assert all(p.device.type == CUDA.type for p in dqn.q_network.parameters())
    assert all(p.device.type == CUDA.type for p in dqn.target_network.parameters())


def test_convnet_forward_and_gradients_on_cuda_equal_cpu():
    torch.manual_seed(0)
    cpu = ConvNet((4, 10, 10), 3, channels=(16,), kernel_sizes=(3,), strides=(1,))
    gpu = copy.deepcopy(cpu).to(CUDA)
    images = torch.randint(0, 2, (64, 4, 10, 10), dtype=torch.uint8)
    targets = torch.randn(64, 3)
    for network, device in ((cpu, "cpu"), (gpu, CUDA)):
        loss = torch.nn.functional.mse_loss(network(images.to(device)), targets.to(device))
        loss.backward()
    torch.testing.assert_close(gpu(images.to(CUDA)).detach().cpu(), cpu(images).detach())
    for (name, p_cpu), p_gpu in zip(cpu.named_parameters(), gpu.parameters(), strict=True):
        assert p_gpu.device.type == CUDA.type, name
        torch.testing.assert_close(p_gpu.grad.cpu(), p_cpu.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "overrides",
    [
        ["algo=dqn", "env=cartpole"],
        ["experiment=fvi_mountaincar"],
        ["algo=fqi", "env=cartpole"],
        ["algo=regression"],
    ],
    ids=["dqn", "fvi", "fqi", "regression"],
)
def test_cli_runs_on_cuda_and_load_on_cpu(compose_config, tmp_path, overrides):
    cfg = compose_config([*overrides, "debug=default", f"device={CUDA.type}", "seed=3"])
    metrics = train(cfg, tmp_path, dict(cfg.hydra.runtime.choices))
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics
    run = rlapprox.load_run(tmp_path)  # a CUDA run loads onto the CPU by default
    assert all(p.device.type == "cpu" for p in run.approximator.parameters())
    if "eval_return_mean" in metrics:
        assert math.isfinite(metrics["eval_return_mean"])
