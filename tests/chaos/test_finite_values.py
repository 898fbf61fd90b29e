"""Values entering state and the ledger are finite JSON; a fork's values fit the state schema."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage
from langgraph.store.memory import InMemoryStore

from atlas_graph.cli import main
from atlas_graph.config import load_config
from atlas_graph.errors import AtlasInputError, ConfigError
from atlas_graph.runner import arun
from atlas_graph.sessions import afork_session, asession_history, ashow_session
from atlas_graph.storage.ledger import NAMESPACE, aget_record, arecord_start
from atlas_graph.testing import ScriptedAgent, ScriptedChatModel

pytestmark = pytest.mark.chaos

PLAN = [{"id": 1, "description": "Add 1200 and 340.", "depends_on": []}]
CONFIG: dict[str, Any] = {"teacher": {"validator": "atlas_graph.demo:validator"}}


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ATLAS_GRAPH_DATABASE_URL", raising=False)
    return tmp_path


def reviewer() -> ScriptedChatModel:
    def respond(messages: list[BaseMessage]) -> str:
        return json.dumps({"approved": True, "concerns": []})

    return ScriptedChatModel(responder=respond)


def agent() -> ScriptedAgent:
    return ScriptedAgent(plan=PLAN, outputs={1: ["1540"]}, synthesis="1540")


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
async def test_non_finite_metadata_is_refused_before_anything_is_stored(bad: float) -> None:
    with pytest.raises(AtlasInputError, match=r"session_metadata\.scores\[1\]"):
        await arun("Add.", config=CONFIG, thread_id="nan-1", agent=agent(),
                   session_metadata={"scores": [1.0, bad]})  # fmt: skip
    result = await arun("Add.", config=CONFIG, thread_id="nan-1", agent=agent(),
                        session_metadata={"scores": [1.0]})  # fmt: skip
    assert result.session_id == "nan-1" and result.task == "Add."  # a new thread: untouched


def test_cli_metadata_with_nan_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    demo = Path(__file__).parents[2] / "atlas_graph/examples/offline_demo.yaml"
    code = main(["run", "Add 1 and 2.", "-c", str(demo), "--metadata", '{"x": NaN}',
                 "--no-stream"])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "session_metadata.x" in err and len(err.strip().splitlines()) == 1


def test_config_refuses_infinite_weights_and_timeouts(tmp_path: Path) -> None:
    for text in ("rim:\n  judges:\n    - {identifier: j, weight: .inf}\n",
                 "orchestration:\n  step_timeout_seconds: .nan\n"):  # fmt: skip
        path = tmp_path / "c.yaml"
        path.write_text(text)
        with pytest.raises(ConfigError, match="finite number"):
            load_config(str(path))
        assert main(["config", "validate", str(path)]) == 2


async def test_the_ledger_stores_non_finite_numbers_as_null() -> None:
    store = InMemoryStore()
    state: Any = {"session_id": "s", "task": "t", "session_metadata": {"r": math.nan}}
    await arecord_start(store, state, lane="auto")
    record = await aget_record(store, "s")
    assert record is not None and record["session_metadata"] == {"r": None}
    assert (await store.aget(NAMESPACE, "s")) is not None


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("session_id", "other-session", "session_id"),
        ("graph_namespace", "x", "graph_namespace"),
        ("steps", 5, "steps"),
        ("lane", "bogus", "lane"),
        ("task", None, "task"),
        ("plan_drafts", "5", "plan_drafts"),
        ("session_metadata", {"w": math.inf}, "session_metadata.w"),
        ("tsk", 1, "tsk"),
    ],
)
async def test_fork_refuses_values_the_session_cannot_run_with(
    key: str, value: Any, named: str
) -> None:
    await arun("Add.", config=CONFIG, mode="escalate", thread_id="fork-1", agent=agent(),
               models={"teacher": reviewer()})  # fmt: skip
    await arun("Add.", config=CONFIG, mode="auto", thread_id="other-session", agent=agent())
    history = await asession_history("fork-1", CONFIG)
    after_probe = next(row for row in history if row["node"] == ["probe"])
    before = await ashow_session("fork-1", CONFIG)
    with pytest.raises(AtlasInputError, match=named) as refused:
        await afork_session("fork-1", after_probe["checkpoint_id"], config=CONFIG,
                            values={key: value})  # fmt: skip
    assert "\n" not in str(refused.value)
    after = await ashow_session("fork-1", CONFIG)
    assert after["checkpoint_id"] == before["checkpoint_id"] and after["finished"]
    other = await ashow_session("other-session", CONFIG)
    assert other["ledger"]["session_id"] == "other-session" and other["finished"]


def test_cli_fork_set_session_id_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    demo = Path(__file__).parents[2] / "atlas_graph/examples/offline_demo.yaml"
    assert main(["run", "Add 1 and 2.", "-c", str(demo), "--thread-id", "c-1", "--no-stream",
                 "--mode", "escalate"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["history", "c-1", "-c", str(demo), "--json"]) == 0
    history = json.loads(capsys.readouterr().out)
    after_probe = next(row for row in history if row["node"] == ["probe"])
    for pair in ('session_id="x"', "steps=5", 'lane="bogus"', "task=null"):
        assert main(["fork", "c-1", "-c", str(demo), "--checkpoint",
                     after_probe["checkpoint_id"], "--set", pair]) == 2  # fmt: skip
        err = capsys.readouterr().err
        assert pair.split("=")[0] in err and len(err.strip().splitlines()) == 1
