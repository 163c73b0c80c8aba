"""rlapprox: value-function approximation for reinforcement learning in PyTorch.

Linear models on basis features and neural networks behind one interface, trained by
regression, fitted value/Q iteration or DQN, configured with Hydra and logged to TensorBoard.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
