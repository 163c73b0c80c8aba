import dataclasses
import functools
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml
from gymnasium.wrappers.vector import RecordEpisodeStatistics

from rlapprox.algos.dqn import DQN, DQNConfig
from rlapprox.algos.dqn_batches import crossed, group_sizes, target_copy_needed, target_q_values
from rlapprox.algos.td import polyak_update
from rlapprox.approximators import MLP
from rlapprox.approximators.heads import DuelingQ
from rlapprox.data.prioritized import PrioritizedReplayBuffer
from rlapprox.envs import make_env, make_vector_env

ADAM = functools.partial(torch.optim.Adam, lr=1e-3)
CARTPOLE = functools.partial(make_env, "CartPole-v1")  # makes an evaluation env
TAU = 0.02  # CartPole's Euler time step: x' = x + TAU * x_dot exactly


def _dqn(envs, **overrides):
    config = DQNConfig(**{"num_envs": envs.num_envs, "eval_episodes": 1, **overrides})
    torch.manual_seed(0)
    net = MLP(4, 2, hidden_sizes=(16,))
    return DQN(net, envs, CARTPOLE, ADAM, config, seed=3)


def _stored(dqn):
    n = len(dqn.buffer)
    return dqn.buffer.obs[:n], dqn.buffer.next_obs[:n], dqn.buffer.terminated[:n]


def test_autoreset_step_is_never_stored():
    envs = make_vector_env("CartPole-v1", num_envs=3)
    dqn = _dqn(envs, total_steps=900, learning_starts=10**6, eval_every=0)
    metrics = dqn.run().metrics
    obs, next_obs, _ = _stored(dqn)
    # Every stored pair obeys the cart's dynamics; a pair spanning a reset would not.
    torch.testing.assert_close(next_obs[:, 0], obs[:, 0] + TAU * obs[:, 1], atol=1e-5, rtol=0)
    # One step is dropped per finished episode (its autoreset step), except for episodes that
    # ended on the very last vector step.
    episodes = metrics["train_episodes"]
    assert episodes > 10
    assert 900 - episodes <= len(dqn.buffer) <= 900 - episodes + 3


def test_truncation_bootstraps_and_termination_does_not():
    def short_cartpole():
        return gym.make("CartPole-v1", max_episode_steps=5)

    envs = RecordEpisodeStatistics(gym.vector.SyncVectorEnv([short_cartpole] * 2))
    dqn = _dqn(envs, total_steps=400, learning_starts=10**6, eval_every=0)
    dqn.run()
    _, next_obs, terminated = _stored(dqn)
    fell = (next_obs[:, 0].abs() > 2.4) | (next_obs[:, 2].abs() > 0.2095)
    assert torch.equal(terminated.bool(), fell)
    # 5-step episodes from a near-upright start never fall: every end was a truncation, stored
    # with terminated=0 so that it bootstraps. Each env repeats 5 steps + 1 autoreset step.
    assert terminated.sum() == 0
    assert len(dqn.buffer) == 2 * (200 - 200 // 6)


def test_training_changes_weights_and_logs_finite_metrics():
    envs = make_vector_env("CartPole-v1", num_envs=1)
    dqn = _dqn(envs, total_steps=300, learning_starts=100, train_freq=10, gradient_steps=2)
    before = [p.clone() for p in dqn.q_network.parameters()]
    metrics = dqn.run().metrics
    # training phases at env steps 100, 110, ..., 300, two gradient steps each
    assert metrics["gradient_steps_done"] == 2 * 21
    after = list(dqn.q_network.parameters())
    assert any(not torch.equal(b, a) for b, a in zip(before, after, strict=True))
    assert np.isfinite(metrics["eval_return_mean"])
    assert metrics["eval_episodes"] == 1


@pytest.mark.parametrize(("tau", "expected_syncs"), [(1.0, 1 + 5), (0.5, 30)])
def test_hard_target_sync_is_skipped_without_gradient_steps(monkeypatch, tau, expected_syncs):
    syncs = []

    def spy(target, online, rate):
        syncs.append(rate)
        polyak_update(target, online, rate)

    monkeypatch.setattr("rlapprox.algos.dqn.polyak_update", spy)
    dqn = _dqn(
        make_vector_env("CartPole-v1", 1),
        total_steps=300,
        learning_starts=100,
        train_freq=50,
        gradient_steps=1,
        target_update_interval=10,
        tau=tau,
        eval_every=0,
    )
    dqn.run()
    # 30 sync points. A hard copy happens at the first (step 10) and after each of the 5
    # training phases (steps 100, 150, ..., 300); the others would copy equal weights. A Polyak
    # step (tau < 1) moves the target at every sync point.
    assert syncs == [tau] * expected_syncs
    for name, value in dqn.q_network.state_dict().items():
        assert torch.equal(dqn.target_network.state_dict()[name], value) == (tau == 1.0), name


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("num_envs", 0, "num_envs"),
        ("gamma", 0.0, r"gamma must be in \(0, 1\]"),
        ("gamma", 1.5, "gamma"),
        ("buffer_size", 10, r"buffer_size \(10\) must be >= batch_size \(64\)"),
        ("loss", "l1", "loss must be one of"),
        ("lr_schedule", "cosine", "lr_schedule must be one of"),
        ("tau", 0.0, "tau"),
        ("n_step", 0, "n_step"),
        ("per_alpha", 1.5, "per_alpha"),
        ("per_beta0", -0.1, "per_beta0"),
        ("per_eps", 0.0, "per_eps"),
        ("checkpoint_every", -1, "checkpoint_every"),
        ("prioritized", "yes", "prioritized must be true or false"),
        ("save_replay", 1, "save_replay must be true or false"),
    ],
)
def test_config_rejects_bad_values(field, value, message):
    with pytest.raises(ValueError, match=message):
        DQNConfig(**{field: value})


def test_rejects_network_with_wrong_output_size():
    envs = make_vector_env("CartPole-v1", num_envs=1)
    with pytest.raises(ValueError, match=r"out_dim=3 but the environment has 2 actions"):
        DQN(MLP(4, 3), envs, CARTPOLE, ADAM, DQNConfig())


def test_rejects_continuous_actions_and_names_the_option():
    envs = make_vector_env("Pendulum-v1", num_envs=1)
    with pytest.raises(ValueError, match=r"env\.discrete_actions"):
        DQN(MLP(3, 1), envs, lambda: make_env("Pendulum-v1"), ADAM, DQNConfig())


def test_discretised_pendulum_has_grid_actions():
    env = make_env("Pendulum-v1", discrete_actions=5)
    assert env.action_space.n == 5
    np.testing.assert_allclose(env.action(0), [-2.0])
    np.testing.assert_allclose(env.action(4), [2.0])
    env.close()


def test_yaml_keys_and_defaults_are_the_config_fields():
    path = Path(__file__).resolve().parents[2] / "configs" / "algo" / "dqn.yaml"
    values = yaml.safe_load(path.read_text())
    # dueling and num_seeds are the recipe's: it wraps the approximator, it builds K agents
    del values["name"], values["dueling"], values["num_seeds"]
    assert set(values) == {field.name for field in dataclasses.fields(DQNConfig)}
    assert DQNConfig(**values) == DQNConfig()  # the library's defaults are the command line's


def test_n_step_transitions_are_stored_with_their_discounts():
    envs = make_vector_env("CartPole-v1", num_envs=2)
    dqn = _dqn(envs, total_steps=400, learning_starts=10**6, eval_every=0, n_step=3, gamma=0.9)
    dqn.run()
    n = len(dqn.buffer)
    discounts = dqn.buffer.discounts[:n]
    rewards = dqn.buffer.rewards[:n]
    # CartPole pays 1 per step: an m-step return is 1 + 0.9 + ... + 0.9^(m-1)
    for m in (1, 2, 3):
        has_m = torch.isclose(discounts, torch.tensor(0.9**m))
        assert bool(has_m.any()) or m < 3
        torch.testing.assert_close(
            rewards[has_m], torch.full_like(rewards[has_m], sum(0.9**k for k in range(m)))
        )
    assert bool(torch.isclose(discounts, torch.tensor(0.729)).float().mean() > 0.8)


def test_prioritized_dqn_trains_and_updates_priorities():
    envs = make_vector_env("CartPole-v1", num_envs=1)
    dqn = _dqn(
        envs,
        total_steps=300,
        learning_starts=100,
        train_freq=10,
        gradient_steps=1,
        prioritized=True,
    )
    metrics = dqn.run().metrics
    assert isinstance(dqn.buffer, PrioritizedReplayBuffer)
    assert metrics["gradient_steps_done"] == 21
    probabilities = dqn.buffer.probabilities()
    assert probabilities.max() > 1.5 * probabilities.min()  # no longer all equal
    assert dqn.buffer.max_priority != 1.0


def test_dueling_q_is_value_plus_centred_advantages():
    torch.manual_seed(0)
    net = MLP(4, 4, hidden_sizes=(8,))
    dueling = DuelingQ(net, num_actions=3)
    assert dueling.out_dim == 3
    obs = torch.randn(5, 4)
    q = dueling(obs)
    raw = net(obs)
    value, advantages = raw[:, :1], raw[:, 1:]
    assert q.shape == (5, 3)
    assert torch.equal(q, value + advantages - advantages.mean(dim=1, keepdim=True))
    torch.testing.assert_close(q.mean(dim=1), value[:, 0])


def test_dueling_q_needs_one_more_output_than_actions():
    with pytest.raises(ValueError, match=r"out_dim=3 but needs 4"):
        DuelingQ(MLP(4, 3), num_actions=3)


def test_dqn_takes_a_dueling_network_as_it_is():
    envs = make_vector_env("CartPole-v1", num_envs=1)
    config = DQNConfig(
        total_steps=120, learning_starts=80, train_freq=8, gradient_steps=1, eval_episodes=1
    )
    dqn = DQN(DuelingQ(MLP(4, 3, hidden_sizes=(8,)), 2), envs, CARTPOLE, ADAM, config)
    assert dqn.run().metrics["gradient_steps_done"] == 6  # at steps 80, 88, ..., 120


def _filled_dqn(double_dqn):
    config = DQNConfig(batch_size=8, gradient_steps=5, double_dqn=double_dqn, loss="huber")
    torch.manual_seed(0)
    net = MLP(4, 2, hidden_sizes=(16,))
    # large steps, so that the online network's argmax over s' changes within the phase
    optimizer = functools.partial(torch.optim.SGD, lr=0.5)
    dqn = DQN(net, make_vector_env("CartPole-v1", 1), CARTPOLE, optimizer, config, seed=3)
    rng = np.random.default_rng(0)
    n = 100
    dqn.buffer.add(
        rng.normal(size=(n, 4)).astype(np.float32),
        rng.integers(2, size=n),
        rng.normal(size=n),
        rng.normal(size=(n, 4)),
        rng.random(n) < 0.2,
        np.full(n, 0.99),
    )
    return dqn


@pytest.mark.parametrize("double_dqn", [False, True])
@pytest.mark.parametrize("group_steps", [None, 2])
def test_training_phase_equals_one_update_per_drawn_batch(monkeypatch, double_dqn, group_steps):
    if group_steps is not None:  # batches drawn and valued two at a time, the last one alone
        monkeypatch.setattr("rlapprox.algos.dqn_batches.GROUP_ELEMENTS", group_steps * 8 * 4)
    phased, stepped = _filled_dqn(double_dqn), _filled_dqn(double_dqn)
    phased.train_phase()
    # the same draws (one generator stream), one batch at a time, each against the target
    # network (and, for Double DQN, the online network as the previous update left it)
    rows = torch.randint(100, (5 * 8,), generator=stepped.generator)
    for batch_rows in rows.split(8):
        batch = stepped.buffer.gather(batch_rows)
        with torch.no_grad():
            next_q_target = stepped.target_network(batch.next_obs)
        stepped.update(batch, next_q_target)
    for name, value in stepped.q_network.state_dict().items():
        torch.testing.assert_close(phased.q_network.state_dict()[name], value)
    assert phased.num_updates == stepped.num_updates == 5


def test_zero_gradient_steps_train_nothing():
    dqn = _dqn(
        make_vector_env("CartPole-v1", 1),
        total_steps=300,
        learning_starts=50,
        gradient_steps=0,
        log_every=100,
        eval_every=0,
    )
    before = {name: value.clone() for name, value in dqn.q_network.state_dict().items()}
    assert dqn.run().metrics["gradient_steps_done"] == 0
    for name, value in dqn.q_network.state_dict().items():
        torch.testing.assert_close(value, before[name])


def test_linear_lr_schedule_falls_to_zero_at_total_steps():
    dqn = _filled_dqn(double_dqn=False)
    dqn.config = dataclasses.replace(dqn.config, total_steps=400, lr_schedule="linear")
    for step, expected in ((100, 0.375), (300, 0.125), (400, 0.0)):
        dqn.step = step
        dqn.train_phase()
        assert dqn.optimizer.param_groups[0]["lr"] == pytest.approx(expected)  # 0.5 x remaining
    constant = _filled_dqn(double_dqn=False)
    constant.step = 300
    constant.train_phase()
    assert constant.optimizer.param_groups[0]["lr"] == 0.5


def test_uniform_draws_are_grouped_to_fit_the_element_budget():
    assert group_sizes(128, 64 * 4) == [128]  # a whole CartPole phase
    assert group_sizes(5, 8 * 4, max_elements=2 * 8 * 4) == [2, 2, 1]
    assert group_sizes(3, 10**9) == [1, 1, 1]  # one batch over budget still makes a group
    assert group_sizes(0, 64) == []


def test_target_values_in_chunks_are_those_of_the_rows_each_chunk_holds():
    torch.manual_seed(0)
    net = MLP(4, 2, hidden_sizes=(16,))
    next_obs = torch.randn(600, 4)
    chunked = target_q_values(net, next_obs)  # 256 + 256 + 88 rows
    assert chunked.shape == (600, 2)
    assert not chunked.requires_grad
    with torch.no_grad():
        expected = torch.cat([net(next_obs[:256]), net(next_obs[256:512]), net(next_obs[512:])])
    assert torch.equal(chunked, expected)


def test_only_a_polyak_step_or_a_copy_after_updates_changes_the_target():
    assert target_copy_needed(tau=1.0, num_updates=0, updates_at_last_sync=-1)  # first sync
    assert not target_copy_needed(tau=1.0, num_updates=7, updates_at_last_sync=7)
    assert target_copy_needed(tau=1.0, num_updates=8, updates_at_last_sync=7)
    assert target_copy_needed(tau=0.5, num_updates=7, updates_at_last_sync=7)


def test_crossed_counts_periods_passed_by_vector_steps():
    assert [step for step in range(4, 41, 4) if crossed(step, 4, 10)] == [12, 20, 32, 40]
    assert crossed(10, 1, 10)
    assert not crossed(11, 1, 10)


def test_config_schedules():
    config = DQNConfig(total_steps=1000, learning_starts=100, exploration_fraction=0.5)
    assert config.epsilon(99) == 1.0  # pure exploration before learning starts
    assert config.epsilon(250) == pytest.approx(1.0 - 0.5 * 0.96)  # half way down to 0.04
    assert config.epsilon(500) == config.epsilon(900) == pytest.approx(0.04)
    assert config.per_beta(0) == 0.4
    assert config.per_beta(1000) == 1.0
    assert config.lr_factor(400) == 1.0
    linear = dataclasses.replace(config, lr_schedule="linear")
    assert linear.lr_factor(400) == pytest.approx(0.6)
    assert linear.lr_factor(2000) == 0.0


def test_keep_best_ends_with_the_network_of_the_best_evaluation():
    envs = make_vector_env("CartPole-v1", num_envs=1)
    config = DQNConfig(
        total_steps=3000, learning_starts=200, train_freq=64, gradient_steps=32,
        eval_every=500, eval_episodes=3, keep_best=True,
    )  # fmt: skip
    dqn = DQN(MLP(4, 2, hidden_sizes=(32,)), envs, CARTPOLE, ADAM, config, seed=3)
    result = dqn.run()
    means = [mean for _, mean in result.eval_history]
    best = max(means)
    assert result.metrics["eval_return_mean"] == best
    # ties go to the later evaluation: the step of the last evaluation reaching the best
    assert result.metrics["best_eval_step"] == max(s for s, m in result.eval_history if m == best)
    assert dqn.evaluate_returns().mean() == best  # the network it ends with is that one
    state = dqn.state_dict()
    assert state["best"]["step"] == result.metrics["best_eval_step"]
