"""Look up the generative model of a Gymnasium id."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rlapprox.models.acrobot import AcrobotModel
from rlapprox.models.base import GenerativeModel
from rlapprox.models.cartpole import CartPoleModel
from rlapprox.models.lqr import LQR_ENV_ID, LQRModel
from rlapprox.models.mountain_car import MountainCarModel
from rlapprox.models.pendulum import PendulumModel

#: Gymnasium id -> model constructor; add an entry to give another env a model.
MODELS: dict[str, Callable[..., GenerativeModel]] = {
    "MountainCar-v0": MountainCarModel,
    "CartPole-v1": CartPoleModel,
    "Acrobot-v1": AcrobotModel,
    "Pendulum-v1": PendulumModel,
    LQR_ENV_ID: LQRModel.from_system,
}


def make_model(env_id: str, **kwargs: Any) -> GenerativeModel:
    """Build the model of ``env_id``, passing ``kwargs`` to its constructor.

    Raises:
        ValueError: if ``env_id`` has no model; the message lists the ids that have one.

    Example:
        >>> make_model("Pendulum-v1", num_torques=3).torques.tolist()
        [-2.0, 0.0, 2.0]
    """
    if env_id not in MODELS:
        known = ", ".join(repr(name) for name in MODELS)
        raise ValueError(
            f"no generative model for env_id {env_id!r}; models exist for {known} "
            "(algo=dqn and algo=fqi need no model)"
        )
    return MODELS[env_id](**kwargs)
