"""Charts of evaluation runs as PNG files (the ``plot`` extra: matplotlib).

This module is the one place that imports matplotlib, late, when a chart is drawn, so
``import atlas_graph`` stays fast and the package works without it. Figures are drawn on the
Agg canvas directly, without pyplot: no backend is switched for the whole process and no
figure is left in a global registry, so charts can be drawn from a server or a test run.

Every function takes plain data (the dicts and dataclasses of the evaluation modules, or
lists of numbers), writes one PNG and returns its path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atlas_graph.errors import ChartError
from atlas_graph.evaluation.matrix import PairSummary, best_pair

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PLOT_INSTALL = "pip install 'atlas-graph[plot]'"
"""How to get matplotlib, as the error says it."""

_DPI = 120
_ALONE, _SUPERVISED = "#9e9e9e", "#1f77b4"
_ARMS = ("baseline", "supervised")


def new_figure(*, size: tuple[float, float] = (8.0, 5.0)) -> Figure:
    """A blank figure on an Agg canvas.

    Raises:
        ChartError: matplotlib is not installed; the message says how to install it.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ChartError(f"charts need matplotlib: {PLOT_INSTALL}", missing="matplotlib") from None
    figure = Figure(figsize=size, dpi=_DPI)
    FigureCanvasAgg(figure)
    return figure


def save(figure: Figure, path: str | Path) -> Path:
    """Write ``figure`` as a PNG at ``path`` (its folder is made) and return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(target, format="png")
    return target


def _error_bars(intervals: Sequence[Mapping[str, float] | None]) -> list[list[float]]:
    """Lower and upper distances from each estimate, as matplotlib's ``yerr`` wants them."""
    # a bound computed in floating point can land a hair past its estimate (Wilson at 0 or n)
    low = [max(0.0, i["estimate"] - i["low"]) if i else 0.0 for i in intervals]
    high = [max(0.0, i["high"] - i["estimate"]) if i else 0.0 for i in intervals]
    return [low, high]


def _estimates(intervals: Sequence[Mapping[str, float] | None]) -> list[float]:
    return [i["estimate"] if i else 0.0 for i in intervals]


def lift_chart(
    lift: Mapping[str, Mapping[str, Any]], path: str | Path, title: str = "Supervision lift"
) -> Path:
    """Accuracy per lane of the student alone and supervised (95 % intervals), and cost.

    ``lift`` is ``EvalReport.lift`` (``baseline.lift``). The second panel shows dollars per
    session when both arms of every lane are priced, else tokens per session.

    Raises:
        ChartError: matplotlib is missing, or the lift has no lanes.
    """
    lanes = list(lift)
    if not lanes:
        raise ChartError("no lanes to plot: the lift is empty")
    figure = new_figure(size=(11.0, 4.5))
    accuracy, spend = figure.subplots(1, 2)
    positions = list(range(len(lanes)))
    width = 0.38
    priced = all(lift[lane][arm]["cost"] is not None for lane in lanes for arm in _ARMS)
    for offset, arm, colour, label in (
        (-width / 2, "baseline", _ALONE, "student alone"),
        (width / 2, "supervised", _SUPERVISED, "supervised"),
    ):
        intervals = [lift[lane][arm]["accuracy"] for lane in lanes]
        xs = [x + offset for x in positions]
        accuracy.bar(xs, _estimates(intervals), width, yerr=_error_bars(intervals),
                     capsize=4, color=colour, label=label)  # fmt: skip
        per_session = [
            _per_session(lift[lane][arm], "cost" if priced else "tokens") for lane in lanes
        ]
        spend.bar(xs, per_session, width, color=colour, label=label)
    for axes in (accuracy, spend):
        axes.set_xticks(positions, lanes)
        axes.set_xlabel("lane")
    accuracy.set_ylim(0, 1.05)
    accuracy.set_ylabel("accuracy (95% interval)")
    accuracy.legend(fontsize="small")
    spend.set_ylabel("cost per session ($)" if priced else "tokens per session")
    figure.suptitle(title)
    return save(figure, path)


def _per_session(arm: Mapping[str, Any], key: str) -> float:
    sessions = int(arm.get("sessions") or 0)
    return float(arm.get(key) or 0.0) / sessions if sessions else 0.0


def matrix_chart(
    pairs: Sequence[PairSummary], path: str | Path, title: str = "Runtime matrix"
) -> Path:
    """Accuracy (95 % intervals), mean reward (spread over repeats) and cost per pair.

    ``pairs`` are ``MatrixReport.pairs``; a panel is left out when no pair has its measure,
    and the best pair is drawn in the strong colour. Cost is dollars per session when every
    pair is priced, else tokens per session.

    Raises:
        ChartError: matplotlib is missing, or there are no pairs.
    """
    if not pairs:
        raise ChartError("no pairs to plot")
    best = best_pair(pairs)
    colours = [_SUPERVISED if pair is best else _ALONE for pair in pairs]
    priced = all(pair.cost_per_session is not None for pair in pairs)
    panels: list[tuple[str, list[float], list[list[float]] | None, float | None]] = []
    if any(pair.accuracy is not None for pair in pairs):
        intervals = [pair.accuracy for pair in pairs]
        panels.append(
            ("accuracy (95% interval)", _estimates(intervals), _error_bars(intervals), 1.05)
        )
    if any(pair.mean_reward is not None for pair in pairs):
        spread = [pair.reward_spread or 0.0 for pair in pairs]
        rewards = [pair.mean_reward or 0.0 for pair in pairs]
        panels.append(("mean reward (sd over repeats)", rewards, [spread, spread], 1.05))
    spend = [
        (pair.cost_per_session if priced else pair.tokens_per_session) or 0.0 for pair in pairs
    ]
    panels.append(("cost per session ($)" if priced else "tokens per session", spend, None, None))
    labels = [pair.pair.label.replace(" / ", "\n") for pair in pairs]
    figure = new_figure(size=(max(4.0, 0.9 * len(pairs) + 2.0) * len(panels), 4.8))
    for axes, (ylabel, values, errors, top) in zip(
        figure.subplots(1, len(panels), squeeze=False)[0], panels, strict=True
    ):
        axes.bar(range(len(pairs)), values, yerr=errors, capsize=4, color=colours)
        axes.set_xticks(range(len(pairs)), labels, fontsize="small")
        axes.set_ylabel(ylabel)
        if top is not None:
            axes.set_ylim(0, top)
    figure.suptitle(f"{title} (student / teacher)")
    return save(figure, path)


def confusion_chart(
    labels: Sequence[str], counts: Sequence[Sequence[int]], path: Path, title: str
) -> Path:
    """A confusion matrix as a heat map, rows the true label and columns the predicted one.

    Each cell shows its count, so the chart reads without the colour scale.

    Raises:
        ChartError: matplotlib is missing, or ``counts`` is not a square table of
            ``len(labels)`` rows.
    """
    size = len(labels)
    if size == 0 or len(counts) != size or any(len(row) != size for row in counts):
        raise ChartError(
            f"a confusion matrix of {size} labels needs {size} rows of {size} counts",
            labels=list(labels),
        )
    figure = new_figure(size=(1.2 * size + 3.0, 1.0 * size + 2.5))
    axes: Axes = figure.subplots()
    image = axes.imshow([list(row) for row in counts], cmap="Blues")
    figure.colorbar(image, ax=axes)
    peak = max((value for row in counts for value in row), default=0)
    for i, row in enumerate(counts):
        for j, value in enumerate(row):
            # white on the dark half of the scale, so every count stays legible
            colour = "white" if peak and value > peak / 2 else "black"
            axes.text(j, i, str(value), ha="center", va="center", color=colour)
    axes.set_xticks(range(size), list(labels))
    axes.set_yticks(range(size), list(labels))
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    return save(figure, path)


def reward_sequence_chart(rewards: Sequence[float | None], path: Path, title: str) -> Path:
    """Reward of each session in order, with the running mean of the rewards so far.

    Sessions without a reward (``None``) keep their place on the axis but draw no point.

    Raises:
        ChartError: matplotlib is missing, or no session has a reward.
    """
    points = [(n, float(r)) for n, r in enumerate(rewards, 1) if r is not None]
    if not points:
        raise ChartError("no rewards to plot", sessions=len(rewards))
    running: list[float] = []
    total = 0.0
    for count, (_, reward) in enumerate(points, 1):
        total += reward
        running.append(total / count)
    figure = new_figure(size=(9.0, 4.5))
    axes: Axes = figure.subplots()
    numbers = [n for n, _ in points]
    axes.scatter(numbers, [r for _, r in points], s=14, color=_ALONE, label="reward")
    axes.plot(numbers, running, color=_SUPERVISED, linewidth=2, label="running mean")
    axes.set_xlim(0.5, len(rewards) + 0.5)
    axes.set_xlabel("session")
    axes.set_ylabel("reward")
    axes.legend(fontsize="small")
    axes.set_title(title)
    return save(figure, path)
