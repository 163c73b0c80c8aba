"""Run logging: TensorBoard event files, a console progress bar and ``metrics.json``.

Every metric tag is defined once, in :class:`Tags`, so dashboards, tests and scripts agree.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections import deque
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Protocol

import torch
from torch import nn


class Tags:
    """TensorBoard tag names, grouped by section (``section/name``)."""

    TRAIN_LOSS = "train/loss"
    TRAIN_TD_LOSS = "train/td_loss"
    TRAIN_GRAD_NORM = "train/grad_norm"
    VAL_MSE = "val/mse"
    Q_MEAN = "train/q_mean"
    Q_MIN = "train/q_min"
    Q_MAX = "train/q_max"
    EPSILON = "rollout/epsilon"
    EPISODIC_RETURN = "rollout/episodic_return"
    EPISODIC_LENGTH = "rollout/episodic_length"
    EVAL_RETURN_MEAN = "eval/return_mean"
    EVAL_RETURN_STD = "eval/return_std"
    BELLMAN_RESIDUAL_MEAN = "fvi/bellman_residual_mean"
    BELLMAN_RESIDUAL_MAX = "fvi/bellman_residual_max"
    VALUE_MEAN = "fvi/value_mean"
    VALUE_CHANGE = "fvi/value_change"
    TD_VALUE_RMS_ERROR = "td/value_rms_error"
    LSPI_POLICY_CHANGES = "lspi/policy_changes"
    LSPI_WEIGHT_CHANGE = "lspi/weight_change"
    FIGURE_VALUE = "figures/value"
    FIGURE_ACTION = "figures/greedy_action"
    FIGURE_VALUE_SLICE = "figures/value_slice"
    FIGURE_ACTION_SLICE = "figures/greedy_action_slice"
    FIGURE_WEIGHTS = "figures/linear_weights"
    SPS = "time/sps"
    FIGURE_FIT = "figures/fit"
    FIGURE_LR_RANGE = "figures/lr_range"
    CONFIG = "config"
    PARAMS = "params"
    GRADS = "grads"


class ScalarLogger(Protocol):
    """What algorithms call: a sink for scalars, histograms and figures."""

    def scalar(self, tag: str, value: float | torch.Tensor, step: int) -> None:
        """Record one scalar at ``step``."""

    def histograms(self, module: nn.Module, step: int) -> None:
        """Record histograms of the module's parameters and their gradients."""

    def figure(self, tag: str, figure: Any, step: int) -> None:
        """Record a matplotlib figure as an image (and close it)."""


class NullLogger:
    """A logger that records nothing; the default for library calls."""

    def scalar(self, tag: str, value: float | torch.Tensor, step: int) -> None:
        """Ignore a scalar."""

    def histograms(self, module: nn.Module, step: int) -> None:
        """Ignore histograms."""

    def figure(self, tag: str, figure: Any, step: int) -> None:
        """Close the figure without recording it."""
        _close_figure(figure)


class TensorBoardLogger:
    """Writes scalars, histograms, figures, config text and hparams into one event file.

    The event file (and its directory) is created on the first record, so a run refused
    before it logs anything leaves no file behind.

    Args:
        log_dir: directory for the event file (the run directory).
        histogram_every: steps between parameter/gradient histograms; 0 disables them.
    """

    def __init__(self, log_dir: str | Path, histogram_every: int = 0) -> None:
        self.log_dir = Path(log_dir)
        self.histogram_every = histogram_every
        self._last_histogram_step: int | None = None
        self._writer: Any = None

    @property
    def writer(self) -> Any:
        """The ``SummaryWriter``, opened on first use."""
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.log_dir))
        return self._writer

    def scalar(self, tag: str, value: float | torch.Tensor, step: int) -> None:
        """Record one scalar at ``step``."""
        self.writer.add_scalar(tag, value, global_step=step)

    def histograms(self, module: nn.Module, step: int) -> None:
        """Record parameter and gradient histograms at most once per ``histogram_every`` steps."""
        if self.histogram_every <= 0:
            return
        last = self._last_histogram_step
        if last is not None and step - last < self.histogram_every:
            return
        self._last_histogram_step = step
        for name, param in module.named_parameters():
            self.writer.add_histogram(f"{Tags.PARAMS}/{name}", param.detach(), step)
            if param.grad is not None:
                self.writer.add_histogram(f"{Tags.GRADS}/{name}", param.grad.detach(), step)

    def figure(self, tag: str, figure: Any, step: int) -> None:
        """Record a matplotlib figure as an image and close it."""
        self.writer.add_figure(tag, figure, global_step=step, close=True)

    def text(self, tag: str, text: str) -> None:
        """Record a markdown text (rendered in TensorBoard's Text tab)."""
        self.writer.add_text(tag, text)

    def hparams(
        self,
        hparams: Mapping[str, Any],
        metric_tags: Sequence[str],
        leading: Collection[str] = (),
    ) -> None:
        """Register hyperparameters and the run's metrics with the HParams plugin.

        Written into this run's own event file (``SummaryWriter.add_hparams`` would open a
        new timestamped sub-run instead), so a sweep's runs line up in the HParams tab. The
        metrics are tags of scalars the run logs (``eval/return_mean``): the plugin shows the
        last value of each, so no scalars are written here.

        Args:
            hparams: name → value, in the order to list them; numbers, strings and bools stay
                what they are, anything else (lists, NaN) is written as text.
            metric_tags: the metrics' scalar tags, in the order of the tab's columns (it shows
                the first five).
            leading: names marked as differing between runs: TensorBoard lists those first
                (then the rest, each part by name) and shows the first five.
        """
        from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
        from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

        start = plugin_data_pb2.SessionStartInfo()
        infos = []
        for name, raw in hparams.items():
            value = _hparam_value(raw)
            if isinstance(value, bool):
                start.hparams[name].bool_value = value
                kind = api_pb2.DATA_TYPE_BOOL
            elif isinstance(value, int | float):
                start.hparams[name].number_value = value
                kind = api_pb2.DATA_TYPE_FLOAT64
            else:
                start.hparams[name].string_value = value
                kind = api_pb2.DATA_TYPE_STRING
            infos.append(api_pb2.HParamInfo(name=name, type=kind, differs=name in leading))
        experiment = api_pb2.Experiment(
            hparam_infos=infos,
            metric_infos=[
                api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag)) for tag in metric_tags
            ],
        )
        end = plugin_data_pb2.SessionEndInfo(status=api_pb2.STATUS_SUCCESS)
        file_writer = self.writer._get_file_writer()
        for tag, data in (
            (metadata.EXPERIMENT_TAG, {"experiment": experiment}),
            (metadata.SESSION_START_INFO_TAG, {"session_start_info": start}),
            (metadata.SESSION_END_INFO_TAG, {"session_end_info": end}),
        ):
            content = plugin_data_pb2.HParamsPluginData(
                version=metadata.PLUGIN_DATA_VERSION, **data
            ).SerializeToString()
            plugin = SummaryMetadata.PluginData(plugin_name=metadata.PLUGIN_NAME, content=content)
            value = Summary.Value(tag=tag, metadata=SummaryMetadata(plugin_data=plugin))
            file_writer.add_summary(Summary(value=[value]))

    def close(self) -> None:
        """Flush and close the event file (if one was opened)."""
        if self._writer is not None:
            self._writer.close()


#: the ETA's rate is measured over about the last RECENT_POINTS * RECENT_SPACING_S seconds
RECENT_POINTS = 10
RECENT_SPACING_S = 1.0


class ProgressBar:
    """A one-line console progress bar with rate and ETA, refreshed at most every 0.5 s.

    Args:
        total: number of units of work (steps, iterations).
        desc: label printed first.
        stream: where to write; stderr by default. On a non-terminal stream a line is printed
            every 10% instead of redrawing.
        enabled: print nothing when False.
    """

    def __init__(
        self, total: int, desc: str = "", stream: IO[str] | None = None, enabled: bool = True
    ) -> None:
        self.total = max(int(total), 1)
        self.desc = desc
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.is_tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.perf_counter()
        self._last_draw = 0.0
        self._last_decile = -1
        # (time, done) of recent updates: the ETA follows the recent rate, so a run that slows
        # down (another process took a core) is not promised the start's pace
        self._recent: deque[tuple[float, int]] = deque([(self.start, 0)], maxlen=RECENT_POINTS)

    def update(self, done: int, **postfix: float) -> None:
        """Report ``done`` units finished, with optional named figures to show."""
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._recent[-1][0] >= RECENT_SPACING_S:
            self._recent.append((now, done))
        decile = 10 * done // self.total
        if self.is_tty:
            if now - self._last_draw < 0.5 and done < self.total:
                return
        elif decile == self._last_decile and done < self.total:
            return
        self._last_draw, self._last_decile = now, decile
        self.stream.write(("\r" if self.is_tty else "") + self._line(done, now, **postfix))
        if not self.is_tty:
            self.stream.write("\n")
        self.stream.flush()

    def close(self, note: str | None = None) -> None:
        """End the bar's line, with a closing ``note`` (e.g. why it stopped early)."""
        if not self.enabled:
            return
        if note:
            self.stream.write(("  " if self.is_tty else f"{self.desc}: ") + note)
        if self.is_tty or note:
            self.stream.write("\n")
        self.stream.flush()

    def _line(self, done: int, now: float, **postfix: float) -> str:
        elapsed = now - self.start
        rate = done / elapsed if elapsed > 0 else 0.0
        then, done_then = self._recent[0]
        recent_rate = (done - done_then) / (now - then) if now > then else 0.0
        eta = (self.total - done) / recent_rate if recent_rate > 0 else math.inf
        width = 24
        filled = width * min(done, self.total) // self.total
        bar = "#" * filled + "-" * (width - filled)
        eta_text = _format_seconds(eta) if math.isfinite(eta) else "?"
        extra = "".join(f" {name}={value:.4g}" for name, value in postfix.items())
        return (
            f"{self.desc} [{bar}] {done}/{self.total} {rate:,.0f} it/s "
            f"elapsed {_format_seconds(elapsed)} ETA {eta_text}{extra}"
        )


def write_metrics(run_dir: str | Path, metrics: Mapping[str, Any]) -> Path:
    """Write ``metrics.json`` (sorted keys, NaN/inf as null) and return its path."""
    path = Path(run_dir) / "metrics.json"
    clean = {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v)
        for k, v in metrics.items()
    }
    path.write_text(json.dumps(clean, indent=2, sort_keys=True) + "\n")
    return path


def read_metrics(run_dir: str | Path) -> dict[str, Any]:
    """Read a run directory's ``metrics.json``."""
    return json.loads((Path(run_dir) / "metrics.json").read_text())


def _format_seconds(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}"


def _hparam_value(value: Any) -> int | float | str | bool:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # the tab's JSON has no NaN or infinity
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _close_figure(figure: Any) -> None:
    import matplotlib.pyplot as plt

    plt.close(figure)
