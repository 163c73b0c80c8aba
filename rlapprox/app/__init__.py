"""The application layer: the only code that knows Hydra, OmegaConf and run directories.

Command-line entry points, config → component builders, one recipe per algorithm, run
context, checkpoints, ``load_run``, evaluation and comparison of runs.
"""
