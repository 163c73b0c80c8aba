"""LockstepDQN: K DQN agents trained together, each exactly as if it ran alone."""

import copy
import dataclasses
import functools
import io

import pytest
import torch

from rlapprox.algos.dqn import DQN, DQNConfig
from rlapprox.algos.dqn_lockstep import (
    LockstepDQN,
    stack_optimizer_states,
    unstack_optimizer_state,
)
from rlapprox.approximators import MLP
from rlapprox.approximators.heads import DuelingQ
from rlapprox.envs import make_env, make_vector_env

ADAM = functools.partial(torch.optim.Adam, lr=1e-3)
CARTPOLE = functools.partial(make_env, "CartPole-v1")  # makes an evaluation env
TOTAL = 2000
SHORT = {
    "total_steps": TOTAL,
    "learning_starts": 300,
    "train_freq": 64,
    "gradient_steps": 16,
    "target_update_interval": 100,
    "batch_size": 32,
    "buffer_size": 1500,  # wraps around before the end
    "eval_every": 1000,
    "eval_episodes": 2,
    "log_every": 250,
    "checkpoint_every": 0,
}
MAX_GRAD_NORM = 0.5  # small enough that CartPole's gradients get clipped
VARIANTS = {
    "default": ({}, "mlp"),
    "double_nstep_per_huber_polyak_clipped": (
        {
            "num_envs": 2,
            "double_dqn": True,
            "n_step": 3,
            "prioritized": True,
            "loss": "huber",
            "tau": 0.5,
            "max_grad_norm": MAX_GRAD_NORM,
        },
        "mlp",
    ),
    "dueling_vmap": ({}, "dueling"),
    # vmap with batch statistics and dropout masks; acting and Double DQN switch to eval mode
    "batch_norm_dropout_double": ({"double_dqn": True}, "batch_norm_dropout"),
}
# for the comparison with a lone DQN: networks that compute alike alone and stacked (dropout
# draws its K masks at once in a stack, not as a lone network would)
DETERMINISTIC_VARIANTS = [name for name, (_, arch) in VARIANTS.items() if "dropout" not in arch]


class RecordingLogger:
    """Keeps every scalar (the speed aside, which is wall-clock time) as a float."""

    def __init__(self) -> None:
        self.records: list[tuple[str, float, int]] = []

    def scalar(self, tag, value, step):
        if tag != "time/sps":
            self.records.append((tag, float(value), step))

    def histograms(self, module, step):
        pass

    def figure(self, tag, figure, step):
        pass

    def values(self, tag):
        return [value for name, value, _ in self.records if name == tag]


def _config(overrides=None, **more):
    return DQNConfig(**{**SHORT, **(overrides or {}), **more})


def _network(arch):
    if arch == "mlp":
        return MLP(4, 2, hidden_sizes=(16,))
    if arch == "dueling":
        return DuelingQ(MLP(4, 3, hidden_sizes=(16,)), num_actions=2)
    if arch == "batch_norm_dropout":
        return MLP(4, 2, hidden_sizes=(16,), norm="batch", dropout=0.1)
    raise AssertionError(arch)


def _agent(seed, config, arch="mlp", init_seed=None):
    """A DQN whose network is initialised after ``torch.manual_seed`` (its seed by default)."""
    torch.manual_seed(seed if init_seed is None else init_seed)
    network = _network(arch)
    envs = make_vector_env("CartPole-v1", config.num_envs)
    return DQN(network, envs, CARTPOLE, ADAM, config, seed=seed, logger=RecordingLogger())


def _agents(seeds, config, arch="mlp", init_offset=0):
    return [_agent(seed, config, arch, init_seed=seed + init_offset) for seed in seeds]


def _metrics(result):
    return {key: value for key, value in result.metrics.items() if key != "sps"}


def _assert_same_weights(a, b):
    for network in ("q_network", "target_network"):
        mine, theirs = getattr(a, network).state_dict(), getattr(b, network).state_dict()
        assert mine.keys() == theirs.keys()
        for name, tensor in mine.items():
            assert torch.equal(tensor, theirs[name]), f"{network}.{name}"


def _differs(a, b):
    mine, theirs = a.q_network.state_dict(), b.q_network.state_dict()
    return any(not torch.equal(tensor, theirs[name]) for name, tensor in mine.items())


def _clone(state):
    """A deep copy of a state dict, as a checkpoint file would hold it."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize("variant", VARIANTS)
def test_an_agents_run_does_not_depend_on_the_others(variant):
    overrides, arch = VARIANTS[variant]
    config = _config(overrides)
    first = _agents([0, 1, 2], config, arch)
    first_lockstep = LockstepDQN(first, ADAM)
    expected_mode = "batched_linear" if arch == "mlp" else "vmap"
    assert first_lockstep.online.mode == expected_mode
    torch.manual_seed(1234)  # dropout draws its masks from torch's global generator
    first_results = first_lockstep.run()
    second = _agents([0, 9, 2], config, arch)
    second_lockstep = LockstepDQN(second, ADAM)
    torch.manual_seed(1234)
    second_results = second_lockstep.run()

    for k in (0, 2):
        _assert_same_weights(first[k], second[k])
        assert _metrics(first_results[k]) == _metrics(second_results[k])
        assert first_results[k].eval_history == second_results[k].eval_history
        assert first[k].logger.records == second[k].logger.records
        assert torch.equal(first[k].buffer.obs, second[k].buffer.obs)
    assert _differs(first[1], second[1])
    assert first[1].logger.records != second[1].logger.records
    # the agents did learn, and as many steps as the config asks
    phases = sum(
        step % config.train_freq < config.num_envs
        for step in range(config.learning_starts, TOTAL + 1, config.num_envs)
    )
    for result in first_results:
        assert result.metrics["env_steps"] == TOTAL
        assert result.metrics["gradient_steps_done"] == phases * config.gradient_steps
        assert [step for step, _ in result.eval_history] == [1000, TOTAL]
    if config.max_grad_norm == MAX_GRAD_NORM:
        # clipping was active: some logged norms (before clipping) exceed the max norm
        for agent in first:
            assert max(agent.logger.values("train/grad_norm")) > MAX_GRAD_NORM


@pytest.mark.parametrize("variant", DETERMINISTIC_VARIANTS)
def test_a_lockstep_agent_learns_as_a_lone_dqn_of_its_seed(variant):
    overrides, arch = VARIANTS[variant]
    config = _config(overrides)
    agents = _agents([0, 1, 2], config, arch)
    results = LockstepDQN(agents, ADAM).run()
    lone = _agent(1, config, arch)
    lone_result = lone.run()
    for name, tensor in lone.q_network.state_dict().items():
        torch.testing.assert_close(
            agents[1].q_network.state_dict()[name], tensor, rtol=0, atol=1e-4, msg=name
        )
    # the same trajectory: the same episodes, updates and evaluations
    for key in ("env_steps", "train_episodes", "gradient_steps_done"):
        assert results[1].metrics[key] == lone_result.metrics[key], key
    assert [s for s, _ in results[1].eval_history] == [s for s, _ in lone_result.eval_history]
    assert torch.equal(agents[1].buffer.obs, lone.buffer.obs)


@pytest.mark.parametrize("variant", ["default", "double_nstep_per_huber_polyak_clipped"])
def test_resumed_lockstep_run_equals_uninterrupted_run(variant):
    overrides, arch = VARIANTS[variant]
    config = _config(overrides, checkpoint_every=TOTAL // 2)
    saved, calls = {}, []

    def save_half_way(step):
        calls.append(step)
        if step == TOTAL // 2:
            saved["state"] = _clone(reference.state_dict())

    seeds = [0, 1, 2]
    reference_agents = _agents(seeds, config, arch)
    reference = LockstepDQN(reference_agents, ADAM, on_checkpoint=save_half_way)
    full = reference.run()
    assert calls == [TOTAL // 2, TOTAL]

    # fresh networks differ from the saved ones until the state is loaded
    resumed_agents = _agents(seeds, config, arch, init_offset=100)
    resumed = LockstepDQN(resumed_agents, ADAM)
    resumed.load_state_dict(saved["state"])
    assert resumed.step == TOTAL // 2
    assert all(agent.step == TOTAL // 2 for agent in resumed_agents)
    rest = resumed.run()

    for k in range(len(seeds)):
        _assert_same_weights(reference_agents[k], resumed_agents[k])
        assert _metrics(rest[k]) == _metrics(full[k])
        assert rest[k].eval_history == full[k].eval_history
        assert torch.equal(resumed_agents[k].buffer.obs, reference_agents[k].buffer.obs)
        assert resumed_agents[k].recent_returns == reference_agents[k].recent_returns
        # what the resumed run logged is what the reference logged after the checkpoint
        after = [r for r in reference_agents[k].logger.records if r[2] > TOTAL // 2]
        assert resumed_agents[k].logger.records == after
    # the stacked optimizers' states agree too
    for mine, theirs in zip(
        resumed.optimizer.state_dict()["state"].values(),
        reference.optimizer.state_dict()["state"].values(),
        strict=True,
    ):
        for key, tensor in theirs.items():
            assert torch.equal(mine[key], tensor), key


def test_an_agents_share_of_the_state_resumes_a_lone_dqn():
    config = _config(checkpoint_every=TOTAL // 2)
    saved = {}

    def save_half_way(step):
        if step == TOTAL // 2:
            saved["state"] = _clone(lockstep.state_dict())

    agents = _agents([0, 1, 2], config)
    lockstep = LockstepDQN(agents, ADAM, on_checkpoint=save_half_way)
    results = lockstep.run()
    entries = saved["state"]["agents"]
    assert len(entries) == 3

    lone = _agent(1, config, init_seed=100)
    lone.load_state_dict(entries[1])
    assert lone.step == TOTAL // 2
    optimizer_state = lone.optimizer.state_dict()
    params = list(lone.q_network.parameters())
    assert len(optimizer_state["state"]) == len(params)
    for index, param in enumerate(params):
        entry = optimizer_state["state"][index]
        assert entry["exp_avg"].shape == param.shape  # not (K, *shape)
        assert entry["exp_avg_sq"].shape == param.shape
        assert entry["step"].shape == ()
        # Adam counted one step per update up to the checkpoint
        assert int(entry["step"]) == entries[1]["counters"]["num_updates"] > 0
    for name, tensor in entries[1]["approximator"].items():
        assert torch.equal(lone.q_network.state_dict()[name], tensor)

    # and the lone DQN goes on as the lockstep agent did
    lone_result = lone.run()
    for name, tensor in agents[1].q_network.state_dict().items():
        torch.testing.assert_close(
            lone.q_network.state_dict()[name], tensor, rtol=0, atol=1e-4, msg=name
        )
    for key in ("env_steps", "train_episodes", "gradient_steps_done"):
        assert lone_result.metrics[key] == results[1].metrics[key], key


@pytest.mark.parametrize(
    "optimizer_factory",
    [
        functools.partial(torch.optim.Adam, lr=1e-2),
        functools.partial(torch.optim.SGD, lr=1e-2, momentum=0.9),
    ],
    ids=["adam", "sgd_momentum"],
)
def test_unstacked_optimizer_states_stack_back(optimizer_factory):
    num_agents = 3
    generator = torch.Generator().manual_seed(0)
    params = [
        torch.randn(num_agents, 4, 3, generator=generator).requires_grad_(),
        torch.randn(num_agents, 4, generator=generator).requires_grad_(),
    ]
    optimizer = optimizer_factory(params)
    for _ in range(3):
        for param in params:
            param.grad = torch.randn(param.shape, generator=generator)
        optimizer.step()
    state = optimizer.state_dict()

    per_agent = unstack_optimizer_state(state, num_agents)
    assert len(per_agent) == num_agents
    for k, agent_state in enumerate(per_agent):
        assert agent_state["param_groups"] == state["param_groups"]
        for index, entry in state["state"].items():
            for key, value in entry.items():
                if key == "step":
                    assert torch.equal(agent_state["state"][index][key], value)
                else:
                    assert agent_state["state"][index][key].shape == params[index].shape[1:]
                    assert torch.equal(agent_state["state"][index][key], value[k])
    # the slices are copies: editing one agent's state leaves the optimizer's alone
    first_key = next(key for key in state["state"][0] if key != "step")
    scratch = unstack_optimizer_state(state, num_agents)
    scratch[0]["state"][0][first_key].fill_(123.0)
    assert not torch.equal(state["state"][0][first_key][0], scratch[0]["state"][0][first_key])

    restacked = stack_optimizer_states(per_agent)
    assert restacked["param_groups"] == state["param_groups"]
    assert restacked["state"].keys() == state["state"].keys()
    for index, entry in state["state"].items():
        assert restacked["state"][index].keys() == entry.keys()
        for key, value in entry.items():
            assert torch.equal(restacked["state"][index][key], value), (index, key)

    # an optimizer loaded with the round trip steps as the original does
    copies = [p.detach().clone().requires_grad_() for p in params]
    reloaded = optimizer_factory(copies)
    reloaded.load_state_dict(_clone(restacked))
    grads = [torch.randn(p.shape, generator=generator) for p in params]
    for param, twin, grad in zip(params, copies, grads, strict=True):
        param.grad, twin.grad = grad.clone(), grad.clone()
    optimizer.step()
    reloaded.step()
    for param, twin in zip(params, copies, strict=True):
        assert torch.equal(param, twin)


def test_agents_with_other_configs_are_refused():
    config = _config()
    other = dataclasses.replace(config, gamma=0.9)
    with pytest.raises(ValueError, match="another config"):
        LockstepDQN([_agent(0, config), _agent(1, other)], ADAM)
    with pytest.raises(ValueError, match="at least one agent"):
        LockstepDQN([], ADAM)
    torch.manual_seed(0)
    envs = make_vector_env("CartPole-v1", 1)
    wider = DQN(MLP(4, 2, hidden_sizes=(32,)), envs, CARTPOLE, ADAM, config, seed=1)
    narrow = _agent(0, config)
    with pytest.raises(ValueError, match="built alike"):
        LockstepDQN([narrow, wider], ADAM)


def test_a_state_of_another_number_of_agents_is_refused():
    config = _config(total_steps=50)
    two = LockstepDQN(_agents([0, 1], config), ADAM)
    state = copy.deepcopy(two.state_dict())
    three = LockstepDQN(_agents([0, 1, 2], config), ADAM)
    with pytest.raises(ValueError, match="num_seeds"):
        three.load_state_dict(state)
