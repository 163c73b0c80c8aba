"""Generative models: batched torch implementations of environments' transition functions."""

from rlapprox.models.acrobot import AcrobotModel
from rlapprox.models.action_repeat import ActionRepeat
from rlapprox.models.base import GenerativeModel, Outcomes
from rlapprox.models.cartpole import CartPoleModel
from rlapprox.models.lqr import LQRModel
from rlapprox.models.mountain_car import MountainCarModel
from rlapprox.models.pendulum import PendulumModel
from rlapprox.models.registry import MODELS, make_model
from rlapprox.models.tabular import TabularMDP, TabularModel, chain, random_mdp


def __getattr__(name: str) -> object:
    # LQREnv lives with the other envs (rlapprox.envs); this alias keeps rlapprox.models.LQREnv
    # working without making the models package import the envs package at import time.
    if name == "LQREnv":
        from rlapprox.envs.lqr import LQREnv

        return LQREnv
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "MODELS",
    "AcrobotModel",
    "ActionRepeat",
    "CartPoleModel",
    "GenerativeModel",
    "LQREnv",
    "LQRModel",
    "MountainCarModel",
    "Outcomes",
    "PendulumModel",
    "TabularMDP",
    "TabularModel",
    "chain",
    "make_model",
    "random_mdp",
]
