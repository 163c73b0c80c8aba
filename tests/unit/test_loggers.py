from __future__ import annotations

import io
import math

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rlapprox.loggers import ProgressBar, Tags, TensorBoardLogger, read_metrics, write_metrics
from rlapprox.viz.plots import new_figure


def run_bar(total: int, enabled: bool = True) -> str:
    stream = io.StringIO()
    bar = ProgressBar(total, desc="fit", stream=stream, enabled=enabled)
    for done in range(1, total + 1):
        bar.update(done)
    bar.close()
    return stream.getvalue()


def test_progress_bar_on_a_non_tty_prints_a_line_per_tenth():
    lines = run_bar(100).splitlines()
    assert 10 <= len(lines) <= 12
    assert all(line.startswith("fit [") for line in lines)
    assert "\r" not in "".join(lines)
    assert "100/100" in lines[-1]
    assert "ETA" in lines[-1]
    assert "#" * 24 in lines[-1]
    assert "50/100" in "".join(lines)


def test_progress_bar_prints_final_line_for_short_totals():
    lines = run_bar(3).splitlines()
    assert len(lines) == 3
    assert "3/3" in lines[-1]


def test_progress_bar_shows_postfix_figures():
    stream = io.StringIO()
    ProgressBar(10, stream=stream).update(10, loss=0.125)
    assert "loss" in stream.getvalue()
    assert "0.125" in stream.getvalue()


def test_disabled_progress_bar_prints_nothing():
    assert run_bar(100, enabled=False) == ""


def test_metrics_round_trip_with_non_finite_as_null(tmp_path):
    metrics = {"seed": 3, "algo": "fvi", "val_mse": float("nan"), "best": math.inf, "x": 0.25}
    path = write_metrics(tmp_path, metrics)
    assert path == tmp_path / "metrics.json"
    assert "NaN" not in path.read_text()
    assert "Infinity" not in path.read_text()
    assert read_metrics(tmp_path) == {
        "seed": 3,
        "algo": "fvi",
        "val_mse": None,
        "best": None,
        "x": 0.25,
    }


@pytest.fixture
def written_run(tmp_path):
    logger = TensorBoardLogger(tmp_path)
    for step, value in enumerate([1.0, 0.5, 0.25]):
        logger.scalar(Tags.TRAIN_LOSS, value, step)
    figure = new_figure(2.0, 2.0)
    figure.add_subplot().plot([0, 1], [1, 0])
    logger.figure(Tags.FIGURE_FIT, figure, 2)
    logger.hparams(
        {
            "approximator": "mlp",
            "optimizer.lr": 1e-3,
            "hidden_sizes": [64, 64],
            "flag": True,
            "ridge": float("nan"),
        },
        [Tags.TRAIN_LOSS, Tags.VAL_MSE],
        leading=["approximator"],
    )
    logger.close()
    return tmp_path


def _hparams_data(accumulator: EventAccumulator) -> dict:
    from tensorboard.plugins.hparams import plugin_data_pb2

    return {
        tag: plugin_data_pb2.HParamsPluginData.FromString(content)
        for tag, content in accumulator.PluginTagToContent("hparams").items()
    }


def test_tensorboard_logger_writes_one_event_file_readable_back(written_run):
    entries = list(written_run.iterdir())
    assert len(entries) == 1
    assert entries[0].is_file()
    assert entries[0].name.startswith("events.out.tfevents")

    accumulator = EventAccumulator(
        str(written_run), size_guidance={"images": 0, "scalars": 0, "tensors": 0}
    )
    accumulator.Reload()
    losses = accumulator.Scalars(Tags.TRAIN_LOSS)
    assert [(e.step, e.value) for e in losses] == [(0, 1.0), (1, 0.5), (2, 0.25)]
    assert accumulator.Tags()["scalars"] == [Tags.TRAIN_LOSS]  # hparams add no scalars
    images = accumulator.Images(Tags.FIGURE_FIT)
    assert len(images) == 1
    assert images[0].step == 2
    assert images[0].encoded_image_string.startswith(b"\x89PNG")
    hparams_content = accumulator.PluginTagToContent("hparams")
    assert {"_hparams_/experiment", "_hparams_/session_start_info"} <= set(hparams_content)


def test_hparams_list_metric_tags_and_mark_the_leading_keys(written_run):
    from tensorboard.plugins.hparams import api_pb2

    accumulator = EventAccumulator(str(written_run), size_guidance={"tensors": 0}).Reload()
    data = _hparams_data(accumulator)
    experiment = data["_hparams_/experiment"].experiment
    assert [info.name for info in experiment.hparam_infos] == [
        "approximator", "optimizer.lr", "hidden_sizes", "flag", "ridge",
    ]  # fmt: skip
    assert [info.name for info in experiment.hparam_infos if info.differs] == ["approximator"]
    assert [m.name.tag for m in experiment.metric_infos] == [Tags.TRAIN_LOSS, Tags.VAL_MSE]
    start = data["_hparams_/session_start_info"].session_start_info.hparams
    assert start["optimizer.lr"].number_value == pytest.approx(1e-3)
    assert start["flag"].bool_value is True  # a bool, not the number 1
    assert start["hidden_sizes"].string_value == "[64, 64]"
    assert start["ridge"].string_value == "nan"  # the tab's JSON has no NaN
    types = {info.name: info.type for info in experiment.hparam_infos}
    assert types["flag"] == api_pb2.DATA_TYPE_BOOL
    assert types["approximator"] == api_pb2.DATA_TYPE_STRING
    end = data["_hparams_/session_end_info"].session_end_info
    assert end.status == api_pb2.STATUS_SUCCESS


def test_tensorboard_histograms_follow_histogram_every(tmp_path):
    logger = TensorBoardLogger(tmp_path, histogram_every=2)
    net = torch.nn.Linear(2, 1)
    net(torch.ones(1, 2)).sum().backward()
    for step in range(1, 5):
        logger.histograms(net, step)
    logger.close()
    accumulator = EventAccumulator(str(tmp_path), size_guidance={"histograms": 0})
    accumulator.Reload()
    histograms = accumulator.Tags()["histograms"]
    assert {f"{Tags.PARAMS}/weight", f"{Tags.GRADS}/weight"} <= set(histograms)
    # the first call records, then at most once per histogram_every steps
    assert [e.step for e in accumulator.Histograms(f"{Tags.PARAMS}/weight")] == [1, 3]


def test_progress_eta_follows_the_recent_rate(monkeypatch):
    import io

    from rlapprox import loggers

    clock = [0.0]
    monkeypatch.setattr(loggers.time, "perf_counter", lambda: clock[0])
    stream = io.StringIO()
    bar = loggers.ProgressBar(100, desc="t", stream=stream)
    for second in range(1, 11):  # 5 units a second for 10 s
        clock[0] = float(second)
        bar.update(5 * second)
    for second in range(11, 21):  # then 1 unit a second: another process took the core
        clock[0] = float(second)
        bar.update(50 + (second - 10))
    line = stream.getvalue().strip().splitlines()[-1]  # printed at 60 of 100
    # 40 units left at the recent 1/s: about 40 s, not the 13 s of the average 3/s
    assert "ETA 0:00:40" in line, line
    bar.close("converged at iteration 60")
    assert stream.getvalue().rstrip().endswith("t: converged at iteration 60")
