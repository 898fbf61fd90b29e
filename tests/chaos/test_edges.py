"""Input edges: hostile thread ids, a closed stdout, a task too big to checkpoint."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from atlas_graph.cli.main import main
from atlas_graph.errors import AtlasInputError
from atlas_graph.runner import arun
from atlas_graph.sessions import ashow_session
from atlas_graph.state import MAX_TASK_CHARS, check_thread_id
from atlas_graph.testing import ScriptedAgent, ScriptedChatModel

ROOT = Path(__file__).resolve().parents[2]
HOSTILE_IDS = [
    "a\nb", "a\rb", "\x1b[31mred", "tab\there", "../etc", "a/../../b", "..", ".hidden",
    "back\\slash", " padded", "nul\x00", "\u2028line", "x" * 201, "",
]  # fmt: skip


def config(tmp_path: Path) -> dict[str, object]:
    return {"storage": {"backend": "sqlite", "path": str(tmp_path / "atlas.sqlite")}}


@pytest.mark.parametrize("thread_id", HOSTILE_IDS, ids=ascii)
async def test_hostile_thread_ids_are_refused_where_they_enter(
    thread_id: str, tmp_path: Path
) -> None:
    with pytest.raises(AtlasInputError, match="thread id") as caught:
        check_thread_id(thread_id)
    assert "\n" not in str(caught.value) and "\x1b" not in str(caught.value)
    if thread_id:  # an empty id asks arun for a new one
        with pytest.raises(AtlasInputError):
            await arun("task", config=config(tmp_path), thread_id=thread_id)
    with pytest.raises(AtlasInputError):
        await ashow_session(thread_id, config(tmp_path))


@pytest.mark.parametrize("thread_id", ["plain", "user@example.com:run-1", "Ünïcode 1", "a.b"])
def test_ordinary_thread_ids_pass(thread_id: str) -> None:
    assert check_thread_id(thread_id) == thread_id


def test_the_cli_refuses_a_hostile_thread_id_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "atlas.yaml"
    path.write_text(yaml.safe_dump(config(tmp_path)))
    assert main(["show", "evil\n\x1b[2Jthread", "-c", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\x1b" not in err


async def test_a_task_over_the_limit_is_refused_before_it_is_stored(tmp_path: Path) -> None:
    models = {"teacher": ScriptedChatModel(responder=lambda messages: "unused")}
    with pytest.raises(AtlasInputError, match="limit is"):
        await arun("x" * (MAX_TASK_CHARS + 1), config=config(tmp_path), models=models,
                   agent=ScriptedAgent(outputs={}), thread_id="big")  # fmt: skip
    database = tmp_path / "atlas.sqlite"
    assert not database.exists() or database.stat().st_size < MAX_TASK_CHARS


def test_export_to_a_closed_stdout_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "atlas.yaml"
    path.write_text(yaml.safe_dump(config(tmp_path)))
    command = f"{sys.executable} -m atlas_graph export -c {path} -o - >&-"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        ["bash", "-c", command], capture_output=False, stderr=subprocess.PIPE, env=env,
        text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "standard output is closed" in done.stderr and "Traceback" not in done.stderr
