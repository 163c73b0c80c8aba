from __future__ import annotations

import pytest
import torch

import rlapprox
from rlapprox.app.checkpoint import (
    CHECKPOINT_NAME,
    FORMAT_VERSION,
    load_checkpoint,
    save_checkpoint,
)
from rlapprox.approximators import MLP

CONFIG = {"seed": 3, "optimizer": {"lr": 0.001, "betas": [0.9, 0.999]}, "algo": {"name": "fvi"}}


def make_mlp(seed: int) -> MLP:
    torch.manual_seed(seed)
    return MLP(3, 2, hidden_sizes=(8, 8), activation="tanh")


def test_round_trip_reproduces_outputs_step_and_config(tmp_path):
    net = make_mlp(0)
    path = save_checkpoint(
        tmp_path / CHECKPOINT_NAME, state={"approximator": net.state_dict()}, step=123,
        config=CONFIG,
    )  # fmt: skip
    assert path == tmp_path / CHECKPOINT_NAME
    payload = load_checkpoint(path)
    assert payload["step"] == 123
    assert payload["config"] == CONFIG
    assert payload["format_version"] == FORMAT_VERSION
    assert payload["rlapprox_version"] == rlapprox.__version__

    restored = make_mlp(1)
    x = torch.randn(5, 3)
    assert not torch.equal(restored(x), net(x))
    restored.load_state_dict(payload["state"]["approximator"])
    torch.testing.assert_close(restored(x), net(x), rtol=0, atol=0)


def test_checkpoint_loads_with_plain_weights_only_torch_load(tmp_path):
    path = save_checkpoint(
        tmp_path / CHECKPOINT_NAME, state={"t": torch.arange(3)}, step=1, config={}
    )
    payload = torch.load(path, weights_only=True)
    torch.testing.assert_close(payload["state"]["t"], torch.arange(3))


def test_torch_file_that_is_not_a_checkpoint_raises_value_error(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match="not an rlapprox checkpoint"):
        load_checkpoint(path)


def test_text_file_raises_value_error(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("hello, not a checkpoint\n")
    with pytest.raises(ValueError, match="checkpoint"):
        load_checkpoint(path)


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / CHECKPOINT_NAME)


def test_save_replaces_existing_checkpoint_and_leaves_no_tmp(tmp_path):
    path = tmp_path / CHECKPOINT_NAME
    save_checkpoint(path, state={"w": torch.zeros(2)}, step=1, config=CONFIG)
    save_checkpoint(path, state={"w": torch.ones(2)}, step=2, config=CONFIG)
    payload = load_checkpoint(path)
    assert payload["step"] == 2
    torch.testing.assert_close(payload["state"]["w"], torch.ones(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_NAME]


def test_interrupted_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / CHECKPOINT_NAME
    save_checkpoint(path, state={"w": torch.zeros(2)}, step=1, config=CONFIG)

    def crash(obj, f, *args, **kwargs):
        with open(f, "wb") as handle:
            handle.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, state={"w": torch.ones(2)}, step=2, config=CONFIG)
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1


def test_checkpoint_of_an_older_format_is_refused_in_one_line(tmp_path):
    path = tmp_path / "old.pt"
    state = {"approximator": {}, "loop": {"envs": None}}  # format 1: no episode tracker state
    payload = {"format_version": 1, "rlapprox_version": "0.0.9", "step": 3, "config": {}}
    torch.save({**payload, "state": state}, path)
    with pytest.raises(
        ValueError, match=r"format 1, written by rlapprox 0\.0\.9.*train the run"
    ) as err:
        load_checkpoint(path)
    assert "\n" not in str(err.value)
