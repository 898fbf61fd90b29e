"""The worked migration of docs/guides/atlas-sdk.md: an Atlas `python_agent.yaml` project."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import atlas_agents
import pytest
from helpers import teacher_responder

from atlas_graph.compat import core
from atlas_graph.testing import ScriptedChatModel

HERE = Path(__file__).parent

# Atlas's layout for a python agent project: the agent section with type python, import_path,
# attribute, working_directory, allow_generator and its own llm block; teacher, orchestration
# and rim as Atlas writes them; storage null.
ATLAS_PYTHON_AGENT_YAML = """\
agent:
  type: python
  name: example-python-agent
  system_prompt: |
    You are a Python agent acting as the Atlas Student.
  tools: []
  import_path: atlas_agents
  attribute: create_agent
  working_directory: {here}
  allow_generator: false
  llm:
    provider: openai
    model: gpt-4o-mini
    api_key_env: OPENAI_API_KEY
    temperature: 0.0
    max_output_tokens: 1024
  metadata_digest:
    enabled: true
    char_budget: 2000
teacher:
  llm:
    provider: openai
    model: gpt-4o-mini
    api_key_env: OPENAI_API_KEY
    temperature: 0.1
    max_output_tokens: 1024
  max_review_tokens: 2048
  plan_cache_seconds: 600
  guidance_max_tokens: 512
  validation_max_tokens: 512
orchestration:
  max_retries: 1
  step_timeout_seconds: 900
  rim_guidance_tag: rim_feedback
  emit_intermediate_steps: true
rim:
  success_threshold: 0.7
  retry_threshold: 0.6
storage: null
"""


def test_atlas_python_agent_project_runs_unedited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # storage: null is the embedded SQLite file of this folder
    path = tmp_path / "python_agent.yaml"
    path.write_text(ATLAS_PYTHON_AGENT_YAML.format(here=HERE))
    atlas_agents.SEEN.clear()
    teacher: dict[str, Any] = {"teacher": ScriptedChatModel(responder=teacher_responder())}

    result = core.run(
        task="Summarise the ticket.",
        config_path=path,
        session_metadata={"signals": [{"name": "tier", "value": "gold", "annotation": "vip"}]},
        stream_progress=False,
        mode="paired",
        models=teacher,
    )

    assert result.native.status == "succeeded"
    assert result.final_answer == "step 1 (attempt 1) of Summarise the ticket."
    [step] = result.step_results
    assert step.evaluation.validation["valid"] is True
    _, metadata = atlas_agents.SEEN[0]
    assert metadata is not None
    assert metadata["llm_config"]["model"] == "gpt-4o-mini"
    assert metadata["task_payload"] == "Summarise the ticket."
    assert '"signals"' in metadata["metadata_digest"]
