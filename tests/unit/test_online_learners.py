"""TD(λ) learners: the equivalence theorem, hand-derived updates, and tile-index parity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlapprox.algos.online_learners import (
    GradientLearner,
    LinearLearner,
    divergence_advice,
    make_learner,
)
from rlapprox.approximators import BoxNormalizer, LinearApproximator
from rlapprox.features import FourierBasis, IdentityBasis, TileCoding


def linear_model(num_features: int, out_dim: int = 1, bias: bool = False) -> LinearApproximator:
    return LinearApproximator(IdentityBasis(num_features), out_dim, bias=bias).double()


def recorded_episode(length: int, num_features: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(length, num_features, generator=generator, dtype=torch.float64)
    rewards = torch.randn(length, generator=generator, dtype=torch.float64)
    return features, rewards


def online_lambda_return(features, rewards, w0, alpha, gamma, lam):
    """S&B §12.4's online λ-return algorithm, from scratch at every horizon h.

    The n-step returns bootstrap from v(S_{t+n}) with the weights of time t+n-1, θ_{t+n-1} =
    w^{t+n-1}_{t+n-1} (van Seijen et al. 2016); the episode ends after the last reward.
    """
    num_steps = len(rewards)
    diagonal = [w0.clone()]  # θ_h = w^h_h

    def n_step_return(t: int, n: int) -> torch.Tensor:
        end = t + n
        ret = sum(gamma**i * rewards[t + i] for i in range(n))
        if end < num_steps:  # bootstrap; the terminal state's value is 0
            ret = ret + gamma**n * (diagonal[end - 1] @ features[end])
        return ret

    for h in range(1, num_steps + 1):
        w = w0.clone()
        for t in range(h):
            horizon = h - t
            target = sum(
                (1 - lam) * lam ** (n - 1) * n_step_return(t, n) for n in range(1, horizon)
            ) + lam ** (horizon - 1) * n_step_return(t, horizon)
            w = w + alpha * (target - w @ features[t]) * features[t]
        diagonal.append(w)
    return diagonal[-1]


def run_episode(learner, features, rewards, gamma):
    """Feed a recorded episode to a learner the way TDLambda.run does."""
    learner.begin_episode()
    for t in range(len(rewards)):
        x = learner.features(features[t].numpy())
        v = learner.value(x, 0)
        last = t == len(rewards) - 1
        v_next = 0.0 if last else learner.value(learner.features(features[t + 1].numpy()), 0)
        delta = float(rewards[t]) + gamma * v_next - v
        learner.update(x, 0, delta, v, v_next)


@pytest.mark.parametrize("lam", [0.0, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_true_online_td_equals_the_online_lambda_return_algorithm(lam, seed):
    features, rewards = recorded_episode(12, 5, seed)
    alpha, gamma = 0.05, 0.9
    w0 = torch.randn(5, generator=torch.Generator().manual_seed(seed + 100), dtype=torch.float64)
    model = linear_model(5)
    model.set_theta(w0.unsqueeze(1))
    learner = LinearLearner(model, alpha, gamma * lam, "dutch")
    run_episode(learner, features, rewards, gamma)
    expected = online_lambda_return(features, rewards, w0, alpha, gamma, lam)
    torch.testing.assert_close(model.get_theta()[:, 0], expected, rtol=0, atol=1e-10)


def test_semi_gradient_td_lambda_step_by_hand():
    model = linear_model(3)
    learner = LinearLearner(model, alpha=0.5, trace_decay=0.5, trace="accumulating")
    learner.begin_episode()
    x1 = learner.features(np.array([1.0, 0.0, 2.0]))
    learner.update(x1, 0, delta=1.0, q=0.0, q_next=0.0)  # z = x1, w = 0.5 x1
    np.testing.assert_allclose(learner.weight[0], [0.5, 0.0, 1.0])
    x2 = learner.features(np.array([0.0, 1.0, 1.0]))
    learner.update(x2, 0, delta=-2.0, q=0.0, q_next=0.0)  # z = 0.5 x1 + x2
    np.testing.assert_allclose(learner.z[0], [0.5, 1.0, 2.0])
    np.testing.assert_allclose(learner.weight[0], [0.5 - 0.5, -1.0, 1.0 - 2.0])


def test_replacing_traces_set_active_tiles_to_one():
    tiles = TileCoding(1, num_tilings=2, tiles_per_dim=4)
    model = LinearApproximator(tiles, 1, bias=False).double()
    learner = LinearLearner(model, alpha=0.1, trace_decay=0.9, trace="replacing")
    learner.begin_episode()
    x = learner.features(np.array([0.3]))
    for _ in range(3):
        learner.update(x, 0, delta=0.0, q=0.0, q_next=0.0)
    assert sorted(learner.z[0].nonzero()[0].tolist()) == sorted(x.indices.tolist())
    np.testing.assert_array_equal(learner.z[0][x.indices], [1.0, 1.0])
    accumulating = LinearLearner(
        LinearApproximator(tiles, 1, bias=False).double(), 0.1, 0.9, "accumulating"
    )
    for _ in range(3):
        accumulating.update(x, 0, delta=0.0, q=0.0, q_next=0.0)
    np.testing.assert_allclose(accumulating.z[0][x.indices], 1 + 0.9 + 0.81)


@pytest.mark.parametrize("trace_decay", [0.0, 0.8])
@pytest.mark.parametrize("bias", [False, True])
def test_linear_learner_equals_autograd_semi_gradient_on_a_linear_model(bias, trace_decay):
    """With ∇q = x (and 1 for the bias), the active-feature update is the autograd update."""
    normalizer = BoxNormalizer([-1.0, -2.0], [1.0, 2.0])
    make = lambda: LinearApproximator(  # noqa: E731
        FourierBasis(2, 2), 3, bias=bias, normalizer=normalizer
    ).double()
    fast, slow = make(), make()
    by_features = LinearLearner(fast, 0.1, trace_decay, "accumulating")
    by_autograd = GradientLearner(slow, 0.1, trace_decay)
    generator = np.random.default_rng(0)
    for learner in (by_features, by_autograd):
        learner.begin_episode()
    for _ in range(20):
        obs = generator.uniform(-1, 1, 2) * [1, 2]
        row, delta = int(generator.integers(3)), float(generator.normal())
        for learner in (by_features, by_autograd):
            learner.update(learner.features(obs), row, delta, q=0.0, q_next=0.0)
    for a, b in zip(fast.parameters(), slow.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    obs = np.array([0.3, -0.7])
    assert by_features.values(by_features.features(obs)) == pytest.approx(
        by_autograd.values(by_autograd.features(obs)), abs=1e-12
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("num_tilings", "tiles"), [(8, 8), (4, [3, 5])])
def test_numpy_tile_indices_match_the_torch_feature_map(dtype, num_tilings, tiles):
    low, high = np.array([-1.2, -0.07]), np.array([0.6, 0.07])
    model = LinearApproximator(
        TileCoding(2, num_tilings, tiles), 3, bias=False, normalizer=BoxNormalizer(low, high)
    ).to(dtype)
    learner = LinearLearner(model, 0.1, 0.0, "accumulating")
    generator = np.random.default_rng(3)
    obs = generator.uniform(low - 0.1, high + 0.1, size=(5000, 2)).astype(
        np.float32 if dtype == torch.float32 else np.float64
    )
    obs[:4] = [[np.inf, 0.0], [-np.inf, 0.01], [0.1, np.inf], [-0.5, -np.inf]]
    torch_indices = model.features.active_indices(model.normalizer(torch.as_tensor(obs)))
    numpy_indices = np.stack([learner.features(o).indices for o in obs])
    np.testing.assert_array_equal(numpy_indices, torch_indices.numpy())
    # and the values the learner reads are the model's outputs
    x = learner.features(obs[0])
    model.linear.weight.data.normal_()
    expected = model(torch.as_tensor(obs[:1])).double()[0].tolist()
    assert learner.values(x) == pytest.approx(expected, rel=1e-5)


def test_numpy_tile_indices_read_nan_as_the_lower_bound():
    low, high = np.array([-1.2, -0.07]), np.array([0.6, 0.07])
    model = LinearApproximator(
        TileCoding(2, 8, 8), 3, bias=False, normalizer=BoxNormalizer(low, high)
    )
    learner = LinearLearner(model, 0.1, 0.0, "accumulating")
    nan_row = learner.features(np.array([np.nan, 0.05], dtype=np.float32)).indices
    low_row = learner.features(np.array([-1.2, 0.05], dtype=np.float32)).indices
    np.testing.assert_array_equal(nan_row, low_row)


def test_hashed_tiles_learn_through_the_torch_path():
    model = LinearApproximator(TileCoding(2, 4, 4, hash_size=7), 1, bias=False).double()
    learner = LinearLearner(model, 0.5, 0.0, "accumulating")
    x = learner.features(np.array([0.2, 0.7]))
    assert x.values is not None
    assert x.values.sum() == 4  # colliding tiles count twice
    learner.update(x, 0, delta=1.0, q=0.0, q_next=0.0)
    with torch.no_grad():
        value = float(model(torch.tensor([[0.2, 0.7]], dtype=torch.float64)))
    assert value == pytest.approx(0.5 * float((x.values**2).sum()))


def test_traces_other_than_accumulating_need_a_linear_model():
    net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    with pytest.raises(ValueError, match="trace='dutch' needs a linear approximator"):
        make_learner(net, 0.1, 0.9, "dutch")
    with pytest.raises(ValueError, match="trace must be one of"):
        make_learner(linear_model(2), 0.1, 0.9, "sticky")
    with pytest.raises(ValueError, match="alpha"):
        make_learner(linear_model(2), 0.0, 0.9, "accumulating")


def test_divergence_advice_fits_the_learner():
    table = LinearApproximator(IdentityBasis(3), 1, bias=False)
    assert "true_online" in divergence_advice(LinearLearner(table, 0.5, 0.9, "accumulating"))
    assert "true_online" not in divergence_advice(LinearLearner(table, 0.5, 0.9, "dutch"))
    assert divergence_advice(LinearLearner(table, 0.5, 0.0, "accumulating")) == (
        "try a smaller algo.alpha"
    )
    net = torch.nn.Sequential(torch.nn.Linear(3, 1))
    assert "neural nets" in divergence_advice(GradientLearner(net, 1e-3, 0.5))
