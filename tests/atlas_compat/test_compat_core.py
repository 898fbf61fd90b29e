"""Atlas's core.run/arun: Atlas arguments in, Atlas's Result field names out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from helpers import teacher_responder
from test_compat_publisher import AtlasStylePublisher

from atlas_graph.compat import core
from atlas_graph.compat.types import AtlasResult
from atlas_graph.testing import ScriptedAgent, ScriptedChatModel


def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "atlas.yaml"
    path.write_text(yaml.safe_dump({"storage": {"backend": "memory"}}))
    return path


def teacher() -> dict[str, Any]:
    return {"teacher": ScriptedChatModel(responder=teacher_responder())}


def check_atlas_shape(result: AtlasResult) -> None:
    assert result.final_answer
    assert result.plan.execution_mode in ("single_shot", "stepwise")
    assert [step.id for step in result.plan.steps] == [s.step_id for s in result.step_results]
    for step in result.step_results:
        assert isinstance(step.trace, str) and step.output in step.trace
        assert isinstance(step.evaluation.validation, dict)
        assert isinstance(step.evaluation.reward, dict)
        assert step.metadata["status"] in ("succeeded", "failed")
        assert isinstance(step.metadata["attempt_history"], list)


async def test_arun_takes_atlas_arguments_and_returns_atlas_names(tmp_path: Path) -> None:
    publisher = AtlasStylePublisher()
    result = await core.arun(
        task="Plan and do it.",
        config_path=config_file(tmp_path),
        publisher=publisher,
        session_metadata={"customer": "acme"},
        stream_progress=False,
        mode="escalate",
        agent=ScriptedAgent(plan=[{"id": 1, "description": "a"}, {"id": 2, "description": "b"}]),
        models=teacher(),
    )
    check_atlas_shape(result)
    assert result.plan.execution_mode == "stepwise"
    assert len(result.step_results) == 2
    assert result.step_results[0].evaluation.validation["valid"] is True
    assert result.session_metadata["customer"] == "acme"
    assert result.session_metadata["execution_mode"] == "escalate"
    assert result.native.status == "succeeded"
    assert publisher.controls[-1][0] == "session_completed"
    assert "native" not in result.model_dump()


def test_run_is_the_sync_twin(tmp_path: Path) -> None:
    result = core.run(
        task="Do it.",
        config_path=str(config_file(tmp_path)),
        stream_progress=False,
        mode="auto",
        agent=ScriptedAgent(),
    )
    check_atlas_shape(result)
    assert result.plan.execution_mode == "single_shot"
    assert result.step_results[0].evaluation.validation == {}
