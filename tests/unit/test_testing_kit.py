import inspect
from types import SimpleNamespace

import gymnasium as gym
import pytest
import torch
from torch import nn

import rlapprox.features
from rlapprox.approximators import MLP, BoxNormalizer, ConvNet, LinearApproximator
from rlapprox.features import (
    ConcatFeatures,
    FeatureMap,
    FourierBasis,
    IdentityBasis,
    MultilinearBasis,
    PolynomialBasis,
    RBFBasis,
    SineBasis,
    TileCoding,
)
from rlapprox.testing import (
    TabularMDP,
    TabularModel,
    chain,
    check_approximator,
    check_feature_map,
    check_model,
    gridworld,
    random_mdp,
)

FEATURE_MAPS = {
    SineBasis: [SineBasis(1, 4), SineBasis(2, 3), SineBasis(3, 2, coupling="full")],
    PolynomialBasis: [
        PolynomialBasis(1, 5),
        PolynomialBasis(2, 3),
        PolynomialBasis(3, 2, coupling="independent"),
    ],
    FourierBasis: [FourierBasis(1, 6), FourierBasis(2, 3), FourierBasis(3, 2, "independent")],
    RBFBasis: [
        RBFBasis(1, 5),
        RBFBasis(2, 4, normalize=True),
        RBFBasis(2, 3, width=0.05, normalize=True, coupling="independent"),
    ],
    MultilinearBasis: [MultilinearBasis(1, 2), MultilinearBasis(2, 5), MultilinearBasis(3, 3)],
    TileCoding: [TileCoding(1, 4, 5), TileCoding(2, 8, [4, 3]), TileCoding(3, 4, 3, hash_size=50)],
    IdentityBasis: [IdentityBasis(1), IdentityBasis(5)],
    ConcatFeatures: [SineBasis(2, 3) + PolynomialBasis(2, 1), ConcatFeatures(FourierBasis(1, 2))],
}


def shipped_feature_map_classes() -> set[type]:
    return {
        obj
        for obj in vars(rlapprox.features).values()
        if inspect.isclass(obj) and issubclass(obj, FeatureMap) and obj is not FeatureMap
    }


class BatchCentred(FeatureMap):
    """Broken: each row depends on the rest of the batch."""

    def __init__(self, in_dim: int) -> None:
        super().__init__(in_dim)
        self.num_features = in_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cos(x - x.mean(0))


class WithWeights(FeatureMap):
    """Broken: has a trainable parameter."""

    def __init__(self, in_dim: int) -> None:
        super().__init__(in_dim)
        self.num_features = in_dim
        self.scale = nn.Parameter(torch.ones(in_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class AlwaysFloat32(FeatureMap):
    """Broken: ignores the input dtype."""

    def __init__(self, in_dim: int) -> None:
        super().__init__(in_dim)
        self.num_features = in_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x).float()


class WrongWidth(FeatureMap):
    """Broken: returns fewer columns than ``num_features``."""

    def __init__(self, in_dim: int) -> None:
        super().__init__(in_dim)
        self.num_features = in_dim + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class LogOfInput(FeatureMap):
    """Broken: infinite at the box's lower corner."""

    def __init__(self, in_dim: int) -> None:
        super().__init__(in_dim)
        self.num_features = in_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log(x)


class NoisyEval(nn.Module):
    """Broken: random output in eval mode."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.out_dim = out_dim
        self.linear = nn.Linear(in_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) + torch.randn(len(x), self.out_dim, dtype=x.dtype)


class PartialLoad(nn.Module):
    """Broken: its loader drops the bias, so a loaded copy keeps its own."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)

    def load_state_dict(self, state_dict, strict=True, assign=False):
        kept = {k: v for k, v in state_dict.items() if k != "linear.bias"}
        return super().load_state_dict(kept, strict=False, assign=assign)


class ObjectExtraState(PartialLoad):
    """Broken: extra state that ``torch.load(weights_only=True)`` refuses."""

    def load_state_dict(self, state_dict, strict=True, assign=False):
        return nn.Module.load_state_dict(self, state_dict, strict, assign)

    def get_extra_state(self) -> object:
        return SimpleNamespace(note="not a tensor")

    def set_extra_state(self, state: object) -> None:
        pass


class DetachedHead(nn.Module):
    """Broken: the first layer never receives a gradient."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.first = nn.Linear(in_dim, 8)
        self.head = nn.Linear(8, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.first(x).detach())


# --- check_feature_map -----------------------------------------------------------------------


def test_every_shipped_feature_map_class_is_covered():
    assert shipped_feature_map_classes() == set(FEATURE_MAPS)


@pytest.mark.parametrize(
    "feature_map",
    [m for maps in FEATURE_MAPS.values() for m in maps],
    ids=lambda m: f"{type(m).__name__}-{m.in_dim}d-{m.num_features}",
)
def test_check_feature_map_passes_on_shipped_maps(feature_map):
    check_feature_map(feature_map)
    check_feature_map(feature_map, batch_size=1, seed=3)


def test_check_feature_map_leaves_the_map_alone():
    basis = RBFBasis(2, 3)
    check_feature_map(basis)
    assert basis.grid_index.dtype == torch.int64


@pytest.mark.parametrize(
    ("feature_map", "match"),
    [
        (BatchCentred(2), "not batch-invariant"),
        (WithWeights(2), "trainable parameters"),
        (AlwaysFloat32(2), "dtype"),
        (WrongWidth(2), "output shape"),
        (LogOfInput(2), "not finite"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, nn.Module) else None,
)
def test_check_feature_map_fails_on_broken_maps(feature_map, match):
    with pytest.raises(AssertionError, match=match):
        check_feature_map(feature_map)


def test_check_feature_map_rejects_a_module_without_sizes():
    with pytest.raises(AssertionError, match="in_dim must be a positive int"):
        check_feature_map(nn.Identity())


# --- check_approximator ----------------------------------------------------------------------


def approximators() -> list:
    torch.manual_seed(0)
    normalizer = BoxNormalizer([-1.0, -2.0], [1.0, 2.0])
    linear = LinearApproximator(FourierBasis(2, 3), 3)
    nn.init.normal_(linear.linear.weight)
    conv = {"channels": (4, 8), "kernel_sizes": (3, 3), "strides": (2, 1), "hidden_sizes": (16,)}
    cases = {
        "mlp": (MLP(4, 2, hidden_sizes=(16, 16)), (4,), 2),
        "mlp-batchnorm": (MLP(3, 1, hidden_sizes=(8, 8), norm="batch"), (3,), 1),
        "mlp-layernorm-dropout": (MLP(3, 2, (8,), "tanh", norm="layer", dropout=0.2), (3,), 2),
        "mlp-residual": (MLP(2, 3, (8, 8, 8), "gelu", residual=True), (2,), 3),
        "mlp-float64": (MLP(2, 1, (8,)).double(), (2,), 1),
        "linear-fourier": (linear, (2,), 3),
        "linear-zero-init": (LinearApproximator(FourierBasis(2, 2), 1), (2,), 1),
        "linear-normalized": (
            LinearApproximator(RBFBasis(2, 3), 1, normalizer=normalizer),
            (2,),
            1,
        ),
        "convnet": (ConvNet((2, 9, 9), 4, **conv), (2, 9, 9), 4),
    }
    return [pytest.param(*case, id=name) for name, case in cases.items()]


@pytest.mark.parametrize(("module", "input_shape", "out_dim"), approximators())
def test_check_approximator_passes_on_shipped_approximators(module, input_shape, out_dim):
    check_approximator(module, input_shape, out_dim)


def test_check_approximator_leaves_the_module_alone():
    net = MLP(2, 1, (8,), dropout=0.5)
    net.train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    check_approximator(net, (2,), 1)
    assert net.training
    assert all(p.grad is None for p in net.parameters())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


@pytest.mark.parametrize(
    ("module", "out_dim", "match"),
    [
        (NoisyEval(3, 2), 2, "two eval-mode forwards differ"),
        (PartialLoad(3, 2), 2, "does not reproduce the outputs"),
        (ObjectExtraState(3, 2), 2, "does not load with weights_only=True"),
        (DetachedHead(3, 2), 2, r"no gradient reaches parameters \['first.weight', 'first.bias'\]"),
        (MLP(3, 2, (8,)), 3, "out_dim is 2, expected 3"),
        (nn.Linear(3, 2), 3, r"output shape \(8, 2\), expected \(8, 3\)"),
    ],
    ids=["noisy-eval", "partial-load", "object-state", "detached", "wrong-out-dim", "wrong-width"],
)
def test_check_approximator_fails_on_broken_modules(module, out_dim, match):
    torch.manual_seed(0)
    with pytest.raises(AssertionError, match=match):
        check_approximator(module, (3,), out_dim)


# --- re-exported MDPs ------------------------------------------------------------------------


def test_tabular_mdps_are_reexported():
    from rlapprox.models import mdp_families, tabular

    assert TabularMDP is tabular.TabularMDP
    assert chain is mdp_families.chain
    assert random_mdp is mdp_families.random_mdp
    assert gridworld is mdp_families.gridworld
    assert TabularModel is tabular.TabularModel


def test_check_model_is_the_kits_check_for_models():
    # the cases live in test_check_model.py; here: the kit's names and its error type
    import rlapprox.testing

    assert {"check_model", "gridworld", "TabularModel"} <= set(rlapprox.testing.__all__)
    check_model(TabularModel(gridworld(2, 3), initial_distribution=[0, 0, 0, 1, 0, 0]))
    broken = TabularModel(chain(3))
    broken.observation_space = gym.spaces.Box(0.0, 1.0, (4,))
    with pytest.raises(AssertionError, match=r"TabularModel: observe must have shape"):
        check_model(broken)
