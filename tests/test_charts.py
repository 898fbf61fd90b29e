"""Charts: each writes a real PNG from plain data, and says how to get matplotlib without it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from atlas_graph.errors import ChartError, LearningPlotError
from atlas_graph.evaluation import charts
from atlas_graph.evaluation.baseline import lift

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE), path
    assert len(data) > len(PNG_SIGNATURE)


def line(k: int, correct: bool, lane: str = "paired", **fields: Any) -> dict[str, Any]:
    return {"id": str(k), "status": "succeeded", "lane": lane, "final_answer": "x",
            "correct": correct, "tokens": 10, "usage": {}, "cost": None,
            "wall_seconds": 0.1, **fields}  # fmt: skip


def test_lift_chart_draws_both_arms_per_lane(tmp_path: Path) -> None:
    supervised = [line(k, k % 4 != 3, "paired" if k < 4 else "coach") for k in range(8)]
    alone = [line(k, k % 2 == 0, "auto") for k in range(8)]
    path = charts.lift_chart(lift(supervised, alone), tmp_path / "charts" / "lift.png")
    assert path == tmp_path / "charts" / "lift.png"
    assert_png(path)


def test_lift_chart_with_prices_and_an_empty_lift(tmp_path: Path) -> None:
    supervised = [line(k, True, cost=0.002) for k in range(3)]
    alone = [line(k, False, "auto", cost=0.001) for k in range(3)]
    assert_png(charts.lift_chart(lift(supervised, alone), tmp_path / "lift.png"))
    with pytest.raises(ChartError, match="no lanes"):
        charts.lift_chart({}, tmp_path / "empty.png")


def test_confusion_chart_writes_counts_in_cells(tmp_path: Path) -> None:
    labels = ["auto", "paired", "coach"]
    counts = [[5, 1, 0], [2, 7, 1], [0, 0, 4]]
    assert_png(charts.confusion_chart(labels, counts, tmp_path / "confusion.png", "Lanes"))
    with pytest.raises(ChartError, match="3 rows of 3 counts"):
        charts.confusion_chart(labels, [[1, 2], [3, 4]], tmp_path / "bad.png", "Lanes")


def test_reward_sequence_chart_skips_missing_rewards(tmp_path: Path) -> None:
    rewards = [0.2, None, 0.5, 0.9, None, 1.0]
    assert_png(charts.reward_sequence_chart(rewards, tmp_path / "rewards.png", "Rewards"))
    with pytest.raises(ChartError, match="no rewards to plot"):
        charts.reward_sequence_chart([None, None], tmp_path / "none.png", "Rewards")


def test_the_learning_curve_draws_through_the_same_loader(tmp_path: Path) -> None:
    from atlas_graph.learning.api import plot_learning_curve

    report = [{"learning_key": "k", "sessions": [{"reward": 0.5, "tokens": 10},
                                                 {"reward": 0.9, "tokens": 8}]}]  # fmt: skip
    assert_png(plot_learning_curve(report, tmp_path / "curve.png"))


def hide_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every ``import matplotlib...`` fail, as it does where it is not installed."""
    for name in [n for n in sys.modules if n == "matplotlib" or n.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)


def test_without_matplotlib_each_chart_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from atlas_graph.learning.api import plot_learning_curve

    hide_matplotlib(monkeypatch)
    with pytest.raises(ChartError) as caught:
        charts.reward_sequence_chart([1.0], tmp_path / "r.png", "Rewards")
    assert str(caught.value) == "charts need matplotlib: pip install 'atlas-graph[plot]'"
    assert caught.value.missing == "matplotlib"  # type: ignore[attr-defined]
    with pytest.raises(ChartError, match=r"pip install 'atlas-graph\[plot\]'"):
        charts.confusion_chart(["a"], [[1]], tmp_path / "c.png", "C")
    report = [{"learning_key": "k", "sessions": [{"reward": 0.5, "tokens": 10}]}]
    with pytest.raises(LearningPlotError, match=r"pip install 'atlas-graph\[plot\]'"):
        plot_learning_curve(report, tmp_path / "curve.png")
    assert not list(tmp_path.iterdir())


def test_matrix_chart_draws_each_pair(tmp_path: Path) -> None:
    from atlas_graph.evaluation.matrix import MatrixPair, summarize_pair

    def run(right: int, reward: float) -> list[dict[str, Any]]:
        return [line(k, k < right, reward=reward) for k in range(4)]

    pairs = [
        summarize_pair(MatrixPair("small", "big"), [run(3, 0.8), run(2, 0.6)]),
        summarize_pair(MatrixPair("gpt-4.1-mini", None), [run(4, 0.9)]),
    ]
    assert_png(charts.matrix_chart(pairs, tmp_path / "matrix.png"))
    unscored = [summarize_pair(MatrixPair("a", "b"), [[{**line(0, True), "correct": None}]])]
    assert_png(charts.matrix_chart(unscored, tmp_path / "unscored.png"))
    with pytest.raises(ChartError, match="no pairs"):
        charts.matrix_chart([], tmp_path / "none.png")
