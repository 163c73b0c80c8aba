"""Regression's defaults on a spread of targets: the default MLP against rich least squares.

Each target is sampled on the unit box (``--num-samples`` uniform points, the CLI's 1000 by
default; noise-free unless named noisy), split 80/20 as ``fit_regression`` splits it, and
fitted by

* **mlp**: the approximator, optimizer and ``RegressionConfig`` that ``rlapprox-train
  algo=regression approximator=mlp`` composes from ``configs/`` (plus any ``--override``),
  through :func:`~rlapprox.algos.fit_regression`, on one CPU thread;
* **least squares** on rich linear bases (Gaussian RBFs with many centres, high-order
  Fourier), each at a few ridge penalties; the best validation MSE is kept as the reference.

The table gives each fit's validation MSE and seconds, the variance of the validation targets,
and the acceptance rule: the MLP's validation MSE within ``10×`` the best least squares', or
below 1% of the target's variance, in under 60 s.

Example:
    python scripts/study_regression_defaults.py
    python scripts/study_regression_defaults.py --targets chirp,steps --seeds 0,1,2
    python scripts/study_regression_defaults.py --override algo.lr_schedule=cosine
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from rlapprox.algos import RegressionConfig, fit_regression
from rlapprox.algos.regression import split_train_val
from rlapprox.app.builders import build_algo_config, build_optimizer_factory
from rlapprox.app.recipes.regression import BUILDER_KEYS, regression_approximator
from rlapprox.approximators import BoxNormalizer, linear_fourier, linear_rbf
from rlapprox.core.seeding import seed_everything

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
RULE_FACTOR = 10.0  # MLP within this factor of the best least squares ...
RULE_VARIANCE_SHARE = 0.01  # ... or below this share of the target's variance
RULE_SECONDS = 60.0
RIDGES = (0.0, 1e-8, 1e-5)


@dataclass(frozen=True)
class Target:
    """A regression target on ``[0, 1]^in_dim`` and the additive noise on its samples."""

    name: str
    in_dim: int
    function: Callable[[torch.Tensor], torch.Tensor]
    noise_std: float = 0.0


def _ridge(x: torch.Tensor) -> torch.Tensor:
    """A narrow Gaussian ridge along a bent line across the square."""
    distance = x[:, 1] - 0.2 - 0.6 * x[:, 0] ** 2
    return torch.exp(-(distance**2) / (2 * 0.06**2))


TARGETS = (
    Target("smooth", 1, lambda x: torch.exp(-x[:, 0]) * torch.sin(2 * math.pi * x[:, 0])),
    Target("high_freq", 1, lambda x: torch.sin(2 * math.pi * 8 * x[:, 0])),
    # six periods, crowded near x = 1 (local frequency 24 per unit there)
    Target("chirp", 1, lambda x: torch.sin(2 * math.pi * 6 * x[:, 0] ** 4)),
    # a small fast ripple on a large slow wave: the ripple is found late, after a long plateau
    Target(
        "ripple",
        1,
        lambda x: torch.sin(2 * math.pi * x[:, 0]) + 0.2 * torch.sin(2 * math.pi * 20 * x[:, 0]),
    ),
    Target("bump", 1, lambda x: torch.exp(-((x[:, 0] - 0.6) ** 2) / (2 * 0.02**2))),
    Target("steps", 1, lambda x: torch.floor(5 * x[:, 0]) / 4),
    Target("kinks", 1, lambda x: (x[:, 0] - 0.3).abs() + 0.5 * (x[:, 0] - 0.75).clamp(min=0)),
    Target("noisy", 1, lambda x: torch.sin(2 * math.pi * x[:, 0]), noise_std=0.3),
    Target(
        "smooth_2d",
        2,
        lambda x: torch.sin(2 * math.pi * x[:, 0]) * torch.cos(math.pi * x[:, 1]),
    ),
    Target("ridge_2d", 2, _ridge),
    Target(
        "checker_2d",
        2,
        lambda x: torch.sin(2 * math.pi * 3 * x[:, 0]) * torch.sin(2 * math.pi * 3 * x[:, 1]),
    ),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line's options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = ",".join(target.name for target in TARGETS)
    parser.add_argument("--targets", default=names, help=f"comma-separated, of {names}")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds (data and fit)")
    parser.add_argument("--num-samples", type=int, default=1000, help="samples per target")
    parser.add_argument(
        "--override",
        action="append",
        default=[],
        help="a Hydra override of the MLP's run, e.g. algo.patience=4000 (repeatable)",
    )
    parser.add_argument("--skip-least-squares", action="store_true", help="the MLP alone")
    return parser.parse_args(argv)


def sample(target: Target, num_samples: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Uniform inputs on the unit box and (noisy) targets, float32."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(num_samples, target.in_dim, generator=generator)
    noise = target.noise_std * torch.randn(num_samples, generator=generator)
    return x, target.function(x) + noise


def compose_run(overrides: list[str]):
    """The config ``rlapprox-train algo=regression approximator=mlp`` would run."""
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)):
        return compose(
            "train", overrides=["algo=regression", "approximator=mlp", "optimizer=adam", *overrides]
        )


def fit_mlp(cfg, x: torch.Tensor, y: torch.Tensor, seed: int) -> dict[str, float]:
    """The default MLP fitted as the regression recipe fits it; its figures."""
    start = time.perf_counter()
    config: RegressionConfig = build_algo_config(cfg, RegressionConfig, BUILDER_KEYS)
    seed_everything(seed)
    low, high = torch.zeros(x.shape[1]), torch.ones(x.shape[1])
    approximator = regression_approximator(cfg, BoxNormalizer(low, high))
    factory = build_optimizer_factory(cfg.optimizer)
    result = fit_regression(approximator, x, y, config, optimizer_factory=factory, seed=seed)
    return {
        "val_mse": result.val_mse,
        "seconds": time.perf_counter() - start,
        "steps": result.num_steps,
        "best_step": result.best_step,
    }


def least_squares_bases(in_dim: int) -> dict[str, Callable[[], torch.nn.Module]]:
    """Rich linear bases for least squares, by name."""
    if in_dim == 1:
        rbf_sizes, fourier_orders = (50, 100, 200, 400), (32, 64, 128, 256)
    else:
        rbf_sizes, fourier_orders = (15, 20, 30), (8, 12, 16, 20)
    bases: dict[str, Callable[[], torch.nn.Module]] = {}
    for size in rbf_sizes:
        bases[f"rbf{size}"] = lambda size=size: linear_rbf(in_dim, 1, centers_per_dim=size)
    for order in fourier_orders:
        bases[f"fourier{order}"] = lambda order=order: linear_fourier(in_dim, 1, order=order)
    return bases


def fit_least_squares(x: torch.Tensor, y: torch.Tensor, seed: int) -> dict[str, float | str]:
    """The best validation MSE over rich bases and ridges, on the MLP's split."""
    train, val = split_train_val(len(x), 0.2, torch.Generator().manual_seed(seed))
    best: dict[str, float | str] = {"val_mse": math.inf}
    for name, build in least_squares_bases(x.shape[1]).items():
        for ridge in RIDGES:
            start = time.perf_counter()
            model = build()
            model.fit_least_squares(x[train], y[train], ridge=ridge)
            with torch.no_grad():
                val_mse = torch.mean((model(x[val]).squeeze(-1) - y[val]) ** 2).item()
            if math.isfinite(val_mse) and val_mse < best["val_mse"]:
                basis = f"{name}" + (f", ridge {ridge:g}" if ridge else "")
                seconds = time.perf_counter() - start
                best = {"val_mse": val_mse, "seconds": seconds, "basis": basis}
    return best


def verdict(mlp: dict[str, float], reference: float, variance: float) -> tuple[bool, str]:
    """Whether the MLP meets the acceptance rule, and why."""
    ratio = mlp["val_mse"] / reference if reference > 0 else math.inf
    fast = mlp["seconds"] < RULE_SECONDS
    if mlp["val_mse"] < RULE_VARIANCE_SHARE * variance and fast:
        return True, f"pass (<1% var; {ratio:.3g}× LS)"
    if ratio <= RULE_FACTOR and fast:
        return True, f"pass ({ratio:.3g}× LS)"
    return False, f"FAIL ({ratio:.3g}× LS, {mlp['val_mse'] / variance:.2%} of var)"


def main(argv: list[str] | None = None) -> int:
    """Fit every target and seed; print the table; exit 1 if a target fails the rule."""
    args = parse_args(argv)
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)  # the CLI's flush_denormal=true
    chosen = set(args.targets.split(","))
    unknown = chosen - {target.name for target in TARGETS}
    if unknown:
        sys.exit(f"unknown targets {sorted(unknown)}")
    cfg = compose_run(args.override)
    print("command: python " + shlex.join(["scripts/study_regression_defaults.py", *sys.argv[1:]]))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread")
    print(f"MLP: {dict(cfg.approximator)}; optimizer lr {cfg.optimizer.lr}")
    print(f"RegressionConfig: {build_algo_config(cfg, RegressionConfig, BUILDER_KEYS)}\n")
    print(
        "| target | seed | target var | MLP val MSE | MLP s | MLP steps (best) "
        "| best LS basis | LS val MSE | LS s | rule |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    failures = 0
    for target in TARGETS:
        if target.name not in chosen:
            continue
        for seed in (int(s) for s in args.seeds.split(",")):
            x, y = sample(target, args.num_samples, seed)
            _, val = split_train_val(len(x), 0.2, torch.Generator().manual_seed(seed))
            variance = y[val].var().item()
            mlp = fit_mlp(cfg, x, y, seed)
            ls = {"val_mse": math.nan, "seconds": math.nan, "basis": "-"}
            ok, rule = True, "-"
            if not args.skip_least_squares:
                ls = fit_least_squares(x, y, seed)
                ok, rule = verdict(mlp, float(ls["val_mse"]), variance)
            failures += not ok
            print(
                f"| {target.name} | {seed} | {variance:.3g} | {mlp['val_mse']:.3g} "
                f"| {mlp['seconds']:.1f} | {mlp['steps']} ({mlp['best_step']}) | {ls['basis']} "
                f"| {ls['val_mse']:.3g} | {ls['seconds']:.2f} | {rule} |",
                flush=True,
            )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
