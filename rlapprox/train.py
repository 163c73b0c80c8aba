"""``python -m rlapprox.train``: the same Hydra app as ``rlapprox-train``."""

from rlapprox.app.train import train_main

if __name__ == "__main__":
    train_main()
