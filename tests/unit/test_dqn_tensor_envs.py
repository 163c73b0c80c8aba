"""DQN on envs that step tensors: the data stays on the device from env to buffer to network."""

import copy
import functools

import numpy as np
import pytest
import torch
from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv
from gymnasium.wrappers.vector import RecordEpisodeStatistics

from rlapprox.algos.dqn import DQN, DQNConfig
from rlapprox.algos.dqn_lockstep import LockstepDQN
from rlapprox.algos.dqn_tensors import TensorEnvDQN, epsilon_greedy_tensors, has_tensor_api
from rlapprox.app.checkpoint import load_checkpoint, save_checkpoint
from rlapprox.approximators import MLP
from rlapprox.data.n_step import NStepAccumulator
from rlapprox.data.n_step_tensors import TensorNStepAccumulator
from rlapprox.envs import ModelVectorEnv, make_env, make_vector_env
from rlapprox.envs.episodes import EpisodeTracker, TensorEpisodeTracker

ADAM = functools.partial(torch.optim.Adam, lr=1e-3)
CARTPOLE = functools.partial(make_env, "CartPole-v1")  # the real Gymnasium env, to evaluate
OBS_DIM = 4  # CartPole's; its Q-networks have 2 outputs, so Q-values never look like observations
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
SMALL = {
    "total_steps": 1200,
    "num_envs": 4,
    "learning_starts": 200,
    "train_freq": 16,
    "gradient_steps": 4,
    "target_update_interval": 100,
    "buffer_size": 1000,  # wraps around before the end
    "batch_size": 32,
    "eval_every": 0,
    "eval_episodes": 1,
    "log_every": 400,
    "checkpoint_every": 600,
}


def _dqn(envs, device="cpu", init_seed=0, seed=3, on_checkpoint=None, **overrides):
    config = DQNConfig(**{**SMALL, "num_envs": envs.num_envs, **overrides})
    torch.manual_seed(init_seed)
    net = MLP(OBS_DIM, 2, hidden_sizes=(16,))
    return DQN(
        net, envs, CARTPOLE, ADAM, config, seed=seed, device=device, on_checkpoint=on_checkpoint
    )


class TensorCartPoleVectorEnv(CartPoleVectorEnv):
    """Gymnasium's array CartPole with the tensor API: a tensor env that snapshots cover."""

    def reset_tensors(self, *, seed=None, options=None):
        obs, infos = self.reset(seed=seed, options=options)
        return torch.from_numpy(obs), infos

    def step_tensors(self, actions):
        obs, rewards, terminated, truncated, infos = self.step(actions.cpu().numpy())
        return (
            torch.from_numpy(obs),
            torch.from_numpy(rewards).double(),
            torch.from_numpy(terminated),
            torch.from_numpy(truncated),
            infos,
        )


class HostCopies:
    """Records every read of observation-like tensors on the host.

    Observation-like: float32 with a last dimension of ``OBS_DIM``. Recorded: ``numpy()``
    (``np.asarray`` goes through it), ``cpu()``, ``tolist()`` and a ``to()`` that leaves a device
    for the CPU.
    """

    def __init__(self, monkeypatch):
        self.calls = []
        for name in ("numpy", "cpu", "tolist"):
            monkeypatch.setattr(torch.Tensor, name, self._spy(name, getattr(torch.Tensor, name)))
        original_to = torch.Tensor.to

        def to(tensor, *args, **kwargs):
            result = original_to(tensor, *args, **kwargs)
            if self.is_observation(tensor) and tensor.device != result.device == torch.device(
                "cpu"
            ):
                self.calls.append(("to", tuple(tensor.shape)))
            return result

        monkeypatch.setattr(torch.Tensor, "to", to)

    @staticmethod
    def is_observation(tensor):
        return tensor.dtype == torch.float32 and tensor.dim() >= 1 and tensor.shape[-1] == OBS_DIM

    def _spy(self, name, original):
        def spy(tensor, *args, **kwargs):
            if self.is_observation(tensor):
                self.calls.append((name, tuple(tensor.shape)))
            return original(tensor, *args, **kwargs)

        return spy


def _refuse_numpy_api(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the tensor path used ModelVectorEnv's numpy API")

    monkeypatch.setattr(ModelVectorEnv, "step", refuse)
    monkeypatch.setattr(ModelVectorEnv, "reset", refuse)


# -- which DQN an env gets ---------------------------------------------------------------------


def test_tensor_envs_get_the_tensor_path_and_others_do_not():
    assert type(_dqn(ModelVectorEnv("CartPole-v1", 2))) is TensorEnvDQN
    assert type(_dqn(make_vector_env("CartPole-v1", 2))) is DQN
    # a wrapper would be bypassed by the inner env's tensor methods: the numpy path serves it
    wrapped = RecordEpisodeStatistics(ModelVectorEnv("CartPole-v1", 2))
    assert not has_tensor_api(wrapped)
    assert type(_dqn(wrapped)) is DQN
    by_name = DQN(
        MLP(OBS_DIM, 2), envs=ModelVectorEnv("CartPole-v1", 2), eval_env_fn=CARTPOLE,
        optimizer_factory=ADAM, config=DQNConfig(num_envs=2),
    )  # fmt: skip
    assert isinstance(by_name, TensorEnvDQN)
    assert type(copy.deepcopy(by_name)) is TensorEnvDQN


def test_envs_without_next_step_autoreset_are_refused():
    envs = ModelVectorEnv("CartPole-v1", 2, autoreset_mode="SameStep")
    with pytest.raises(ValueError, match="autoreset_mode=SameStep"):
        _dqn(envs)


# -- (a) it learns ------------------------------------------------------------------------------


def test_dqn_on_a_model_vector_env_learns_cartpole():
    config = {"total_steps": 3000, "learning_starts": 500, "gradient_steps": 8,
              "target_update_interval": 200, "buffer_size": 10_000, "batch_size": 64,
              "n_step": 3, "eval_episodes": 10, "checkpoint_every": 0}  # fmt: skip
    torch.manual_seed(0)
    net = MLP(OBS_DIM, 2, hidden_sizes=(64, 64))
    dqn = DQN(
        net, ModelVectorEnv("CartPole-v1", 4), CARTPOLE, ADAM,
        DQNConfig(**{**SMALL, **config}), seed=0,
    )  # fmt: skip
    metrics = dqn.run().metrics
    # Greedy returns in the real CartPole-v1 after 3000 steps were 85 to 380 over seeds 0-5 and
    # n_step 1 and 3 (this one: 320, untrained: 9); a random policy scores about 22.
    assert metrics["eval_return_mean"] > 50
    assert metrics["env_steps"] == 3000
    assert metrics["train_episodes"] > 20


# -- (b) no host copies of observations ---------------------------------------------------------


@pytest.mark.parametrize("n_step", [1, 3])
def test_the_tensor_path_copies_no_observation_to_the_host(monkeypatch, n_step):
    dqn = _dqn(ModelVectorEnv("CartPole-v1", 4), n_step=n_step, prioritized=n_step == 3)
    _refuse_numpy_api(monkeypatch)
    copies = HostCopies(monkeypatch)
    metrics = dqn.run().metrics  # the final evaluation in Gymnasium's env reads actions only
    assert copies.calls == []
    assert metrics["gradient_steps_done"] > 0
    assert metrics["train_episodes"] > 10  # episodes ended and were logged
    assert torch.is_tensor(dqn.observation_tensor)
    # the spy sees what it should: the numpy view for numpy callers is a host copy
    assert dqn.observations.shape == (4, OBS_DIM)
    assert copies.calls


def test_the_spy_sees_the_numpy_paths_copies(monkeypatch):
    # a wrapped ModelVectorEnv takes the numpy path: its step copies observations to numpy
    dqn = _dqn(RecordEpisodeStatistics(ModelVectorEnv("CartPole-v1", 4)), total_steps=40)
    copies = HostCopies(monkeypatch)
    dqn.run()
    assert ("numpy", (4, OBS_DIM)) in copies.calls


def test_the_autoreset_step_is_never_stored():
    # every stored pair obeys the cart's dynamics; a pair spanning a reset would not
    dqn = _dqn(ModelVectorEnv("CartPole-v1", 3), total_steps=900, learning_starts=10**6)
    metrics = dqn.run().metrics
    n = len(dqn.buffer)
    obs, next_obs = dqn.buffer.obs[:n], dqn.buffer.next_obs[:n]
    torch.testing.assert_close(next_obs[:, 0], obs[:, 0] + 0.02 * obs[:, 1], atol=1e-5, rtol=0)
    episodes = metrics["train_episodes"]
    assert episodes > 10
    assert 900 - episodes <= n <= 900 - episodes + 3  # one autoreset step dropped per episode


def test_epsilon_greedy_on_tensors():
    generator = torch.Generator().manual_seed(0)
    obs = torch.zeros(1000, OBS_DIM)

    def never(_):
        raise AssertionError("greedy actions computed although every env explores")

    def greedy(o):
        return torch.full((len(o),), 2)

    explored = epsilon_greedy_tensors(generator, 1.0, 2, obs, never)
    assert explored.dtype == torch.long
    assert set(explored.tolist()) == {0, 1}
    assert torch.equal(epsilon_greedy_tensors(generator, 0.0, 2, obs, greedy), greedy(obs))
    mixed = epsilon_greedy_tensors(generator, 0.3, 2, obs, greedy)
    assert 0.25 < (mixed != 2).float().mean() < 0.35


# -- (c) the torch twins equal the numpy originals ---------------------------------------------


def _vector_stream(steps, num_envs, seed):
    """One-step data as a next-step-autoreset vector env yields it: ends, truncations, resets."""
    rng = np.random.default_rng(seed)
    after_autoreset = np.zeros(num_envs, dtype=bool)
    for _ in range(steps):
        real = ~after_autoreset
        terminated = (rng.random(num_envs) < 0.15) & real
        truncated = (rng.random(num_envs) < 0.1) & real & ~terminated
        rewards = np.where(real, rng.normal(size=num_envs), 0.0)
        yield (
            rng.normal(size=(num_envs, 3)).astype(np.float32),
            rng.integers(4, size=num_envs),
            rewards,
            rng.normal(size=(num_envs, 3)).astype(np.float32),
            terminated,
            truncated,
            real,
        )
        after_autoreset = terminated | truncated


def _assert_same(tensors, arrays):
    assert len(tensors) == len(arrays)
    for tensor, array in zip(tensors, arrays, strict=True):
        np.testing.assert_array_equal(tensor.numpy(), np.asarray(array))
        assert tensor.numpy().dtype == np.asarray(array).dtype


@pytest.mark.parametrize("n", [1, 3])
def test_torch_n_step_accumulator_equals_the_numpy_one(n):
    gamma, num_envs = 0.9, 5
    numpy_twin = NStepAccumulator(n, gamma, num_envs, (3,))
    torch_twin = TensorNStepAccumulator(n, gamma, num_envs, (3,))
    stored = 0
    for step, arrays in enumerate(_vector_stream(300, num_envs, seed=n)):
        expected = numpy_twin.push(*(a.copy() for a in arrays))
        got = torch_twin.push(*(torch.from_numpy(a.copy()) for a in arrays))
        _assert_same(got, expected)
        stored += len(expected[0])
        if step == 150:  # the states are the same and each twin loads the other's
            for key, value in numpy_twin.state_dict().items():
                saved = torch_twin.state_dict()[key]
                assert torch.equal(saved, value) if torch.is_tensor(value) else saved == value
            torch_twin.load_state_dict(numpy_twin.state_dict())
            numpy_twin.load_state_dict(torch_twin.state_dict())
    assert stored > 300 * num_envs * 0.7  # most steps left as transitions, some waited or not


def test_torch_episode_tracker_equals_the_numpy_one():
    numpy_twin, torch_twin = EpisodeTracker(5), TensorEpisodeTracker(5)
    ended = 0
    for _, _, rewards, _, terminated, truncated, real in _vector_stream(300, 5, seed=0):
        done = terminated | truncated
        expected = numpy_twin.update(rewards, done, real)
        got = torch_twin.update(*(torch.from_numpy(a) for a in (rewards, done, real)))
        assert (got is None) == (expected is None)
        if expected is not None:
            _assert_same(got, expected)
            ended += len(expected[0])
    assert ended > 100
    _assert_same(list(torch_twin.state_dict().values()), list(numpy_twin.state_dict().values()))
    numpy_twin.load_state_dict(torch_twin.state_dict())
    with pytest.raises(ValueError, match="num_envs"):
        TensorEpisodeTracker(4).load_state_dict(numpy_twin.state_dict())


# -- (d) checkpoints ---------------------------------------------------------------------------


def _run_with_a_half_way_checkpoint(make_envs, path, **overrides):
    def save_half_way(step):
        if step == SMALL["total_steps"] // 2:
            save_checkpoint(path, state=reference.state_dict(), step=step, config={})

    reference = _dqn(make_envs(), on_checkpoint=save_half_way, **overrides)
    metrics = reference.run().metrics
    resumed = _dqn(make_envs(), init_seed=1, **overrides)  # other weights until it loads
    return reference, metrics, resumed, load_checkpoint(path)["state"]  # weights_only=True


def test_a_model_vector_env_run_resumes_exactly(tmp_path):
    reference, metrics, resumed, state = _run_with_a_half_way_checkpoint(
        lambda: ModelVectorEnv("CartPole-v1", 4), tmp_path / "checkpoint.pt", n_step=3
    )
    assert state["loop"]["obs"].shape == (4, OBS_DIM)
    assert "explore_generator" in state
    assert state["loop"]["envs"] is not None  # the model env's own state was saved
    resumed.load_state_dict(state)
    assert resumed.step == 600
    assert torch.is_tensor(resumed.observation_tensor)
    rest = resumed.run().metrics
    for name, tensor in reference.q_network.state_dict().items():
        assert torch.equal(resumed.q_network.state_dict()[name], tensor), name
    for key in ("env_steps", "train_episodes", "gradient_steps_done", "eval_return_mean"):
        assert rest[key] == metrics[key], key


@pytest.mark.parametrize("n_step", [1, 3])
def test_a_snapshotted_tensor_env_resumes_exactly(tmp_path, n_step):
    reference, full, resumed, state = _run_with_a_half_way_checkpoint(
        lambda: TensorCartPoleVectorEnv(num_envs=4), tmp_path / "checkpoint.pt", n_step=n_step
    )
    assert type(resumed) is TensorEnvDQN
    resumed.load_state_dict(state)  # no warning: the env's state was saved
    rest = resumed.run().metrics
    for name, tensor in reference.q_network.state_dict().items():
        assert torch.equal(resumed.q_network.state_dict()[name], tensor), name
    assert torch.equal(resumed.buffer.obs, reference.buffer.obs)
    for key in ("env_steps", "train_episodes", "gradient_steps_done", "eval_return_mean"):
        assert rest[key] == full[key], key
    assert resumed.recent_returns == reference.recent_returns


def test_lockstep_agents_on_model_vector_envs_train():
    agents = [_dqn(ModelVectorEnv("CartPole-v1", 2), seed=s, total_steps=400) for s in (0, 1)]
    results = LockstepDQN(agents, ADAM).run()
    assert [r.metrics["env_steps"] for r in results] == [400, 400]
    assert all(r.metrics["gradient_steps_done"] > 0 for r in results)


# -- (e) on a GPU -------------------------------------------------------------------------------


@CUDA
@pytest.mark.parametrize("env_device", ["cuda", "cpu"])
def test_the_whole_loop_runs_on_cuda(monkeypatch, env_device):
    envs = ModelVectorEnv("CartPole-v1", 4, device=env_device)
    dqn = _dqn(envs, device="cuda", n_step=3, checkpoint_every=0)
    _refuse_numpy_api(monkeypatch)
    copies = HostCopies(monkeypatch)
    metrics = dqn.run().metrics
    assert copies.calls == []
    assert metrics["gradient_steps_done"] > 0
    assert dqn.observation_tensor.device.type == "cuda"
    assert dqn.buffer.obs.device.type == "cuda"
    assert dqn.n_step.obs.device.type == "cuda"
    assert dqn.episodes.returns.device.type == "cuda"
    assert np.isfinite(metrics["eval_return_mean"])
