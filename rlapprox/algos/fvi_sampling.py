"""Where fitted value iteration's sample states come from."""

from __future__ import annotations

import torch

from rlapprox.approximators.linear import LinearApproximator
from rlapprox.models.base import GenerativeModel

SAMPLINGS = ("uniform", "sobol", "grid", "vertices")


def draw_states(
    model: GenerativeModel,
    sampling: str,
    num_states: int,
    grid_points: int,
    generator: torch.Generator,
    device: torch.device,
) -> torch.Tensor:
    """Sample states over the model's state box.

    Args:
        model: whose ``state_low``/``state_high`` box (or ``sample_states``) to draw from.
        sampling: ``"uniform"`` (``model.sample_states``: the region that matters), ``"sobol"``
            (a scrambled Sobol sequence over the box, seeded from ``generator``) or ``"grid"``
            (``grid_points`` per dimension, corners included).
        num_states: how many, for ``"uniform"`` and ``"sobol"``.
        grid_points: points per state dimension for ``"grid"``.
        generator: the source of randomness.
        device: where the states live.

    Returns:
        float64 states, ``(num_states, state_dim)`` or ``(grid_points**state_dim, state_dim)``.
    """
    low = model.state_low.to(device, torch.float64)
    high = model.state_high.to(device, torch.float64)
    if sampling == "uniform":
        return model.sample_states(num_states, generator)
    if sampling == "sobol":
        seed = int(torch.randint(2**31 - 1, (1,), generator=generator, device=device))
        engine = torch.quasirandom.SobolEngine(model.state_dim, scramble=True, seed=seed)
        unit = engine.draw(num_states, dtype=torch.float64).to(device)
        return low + unit * (high - low)
    if sampling == "grid":
        axes = [torch.linspace(0, 1, grid_points, dtype=torch.float64)] * model.state_dim
        unit = torch.stack([m.flatten() for m in torch.meshgrid(*axes, indexing="ij")], 1)
        return low + unit.to(device) * (high - low)
    raise ValueError(f"sampling must be one of 'uniform', 'sobol', 'grid', got {sampling!r}")


def vertex_states(
    approximator: LinearApproximator, model: GenerativeModel, value_inputs: str
) -> torch.Tensor:
    """The states at a multilinear approximator's grid vertices: interpolation as an averager.

    Args:
        approximator: a linear approximator on an interpolating grid, with a box normaliser.
        model: maps the vertices back to states where the approximator takes observations.
        value_inputs: ``"states"`` (the vertices are states) or ``"observations"``.

    Returns:
        float64 states ``(num_features, state_dim)``, on the approximator's device.

    Raises:
        ValueError: if the approximator has no grid vertices or no box normaliser, or (with
            observations) some vertex is no observation of any state.
    """
    inputs = approximator.input_vertices(torch.float64)
    if value_inputs == "states":
        return inputs
    states = model.states_from_observations(inputs)
    if not torch.allclose(model.observe(states), inputs, atol=1e-9):
        # e.g. (cos θ, sin θ) grid points off the unit circle: no state shows them
        raise ValueError(
            f"value_inputs='observations' needs every grid point to be an observation of some "
            f"state, which {model.env_id} does not give; use value_inputs='states'"
        )
    return states
