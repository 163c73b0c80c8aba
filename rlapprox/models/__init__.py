"""Generative models: batched torch implementations of environments' transition functions."""
