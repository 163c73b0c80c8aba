"""Generative models: batched torch implementations of environments' transition functions."""

from rlapprox.models.acrobot import AcrobotModel
from rlapprox.models.action_repeat import ActionRepeat
from rlapprox.models.base import GenerativeModel, Outcomes
from rlapprox.models.cartpole import CartPoleModel
from rlapprox.models.lqr import LQREnv, LQRModel
from rlapprox.models.mountain_car import MountainCarModel
from rlapprox.models.pendulum import PendulumModel
from rlapprox.models.registry import MODELS, make_model
from rlapprox.models.tabular import TabularMDP, TabularModel, chain, random_mdp

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
