"""Atlas task files load for `atlas-graph eval` as they are."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from atlas_graph.errors import TaskFileError
from atlas_graph.evaluation.batch import read_tasks

ATLAS_TASKS = """\
# Synthetic runtime tasks for Atlas SDK.
# Each line: {"task", "expected_answer", "metadata"}.
{"task": "What is 2 + 2?", "expected_answer": "4", "metadata": {"domain": "math"}}

  # an indented comment
{"task": "Name the capital of France.", "expected_answer": "Paris", "metadata": {"tags": ["geo"]}}
{"task": "Native line", "ground_truth": "x", "session_metadata": {"a": 1}}
"""


def test_atlas_task_file_loads_with_comments_and_atlas_keys(tmp_path: Path) -> None:
    path = tmp_path / "synthetic_runtime_tasks.jsonl"
    path.write_text(ATLAS_TASKS)
    tasks = read_tasks(path)

    assert [task.task for task in tasks] == [
        "What is 2 + 2?", "Name the capital of France.", "Native line",
    ]  # fmt: skip
    assert [task.ground_truth for task in tasks] == ["4", "Paris", "x"]
    assert tasks[0].session_metadata == {"domain": "math"}
    assert tasks[1].session_metadata == {"tags": ["geo"]}
    assert tasks[0].line == 3  # line numbers still count the comments


def test_an_atlas_key_and_its_native_twin_on_one_line_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "tasks.jsonl"
    path.write_text(json.dumps({"task": "t", "expected_answer": "a", "ground_truth": "b"}) + "\n")
    with pytest.raises(TaskFileError, match='"expected_answer" and "ground_truth"'):
        read_tasks(path)
