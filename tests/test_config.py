"""Tests for atlas_graph.config: loading Atlas-style YAML and one-line error messages."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from atlas_graph.config import (
    AtlasConfig,
    ChatAgentConfig,
    ConfigError,
    LLMParameters,
    PythonAgentConfig,
    StorageConfig,
    load_config,
    parse_config,
)

# An SRE agent config in Atlas SDK's documented YAML layout.
ATLAS_SRE_YAML = """\
agent:
  type: python
  name: sre-agent
  system_prompt: |
    You are an SRE assistant.
  import_path: json
  attribute: dumps
  working_directory: ./
student:
  prompts:
    planner: "{base_prompt}\\nPlan the work."
    executor: "{base_prompt}\\nDo the step."
    synthesizer: "{base_prompt}\\nAnswer."
  max_plan_tokens: 768
  max_step_tokens: 1024
  max_synthesis_tokens: 768
  tool_choice: auto
teacher:
  llm:
    provider: openai
    model: gpt-5
    api_key_env: OPENAI_API_KEY
    temperature: 0.1
    max_output_tokens: 768
  max_review_tokens: 1536
  plan_cache_seconds: 60
  guidance_max_tokens: 384
  validation_max_tokens: 384
orchestration:
  max_retries: 1
  step_timeout_seconds: 600
  rim_guidance_tag: rim_feedback
  emit_intermediate_steps: true
rim:
  small_model:
    provider: openai
    model: gpt-4o-mini
    api_key_env: OPENAI_API_KEY
    max_output_tokens: 512
storage: null
metadata:
  team: sre
"""

# Atlas SDK's OpenAI-agent example, keeping only the keys atlas-graph supports.
ATLAS_OPENAI_EXAMPLE_YAML = """\
agent:
  type: openai
  name: example-openai-agent
  system_prompt: |
    You are an OpenAI model acting as the Atlas Student. Respond with JSON when asked.
  tools: []
  llm:
    provider: openai
    model: gpt-4o-mini
    api_key_env: OPENAI_API_KEY
    temperature: 0.0
    max_output_tokens: 1024
student:
  max_plan_tokens: 2048
  max_step_tokens: 2048
  max_synthesis_tokens: 2048
  tool_choice: auto
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
  judges:
    - identifier: process
      kind: process
      weight: 0.5
      principles:
        - Logical reasoning
      llm:
        provider: openai
        model: gpt-4o-mini
        api_key_env: OPENAI_API_KEY
        temperature: 0.0
        max_output_tokens: 512
    - identifier: helpfulness
      kind: helpfulness
      weight: 0.5
      principles:
        - User impact
      llm:
        provider: openai
        model: gpt-4o-mini
        api_key_env: OPENAI_API_KEY
        temperature: 0.0
        max_output_tokens: 512
  success_threshold: 0.7
  retry_threshold: 0.6
"""

TOP_LEVEL_FIELDS = (
    "agent",
    "student",
    "teacher",
    "orchestration",
    "rim",
    "adaptive_teaching",
    "learning",
    "runtime_safety",
    "prompt_rewrite",
    "storage",
    "metadata",
)


def write(tmp_path: Path, text: str, name: str = "atlas.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def config_error(data: Any, *, source: str = "cfg.yaml", **kwargs: Any) -> str:
    """The one-line message ``parse_config`` raises for ``data``."""
    with pytest.raises(ConfigError) as info:
        parse_config(data, source=source, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def file_error(path: Path, **kwargs: Any) -> str:
    """The one-line message ``load_config`` raises for the file at ``path``."""
    with pytest.raises(ConfigError) as info:
        load_config(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    return message


def python_agent(**extra: Any) -> dict[str, Any]:
    return {"type": "python", "import_path": "json", **extra}


# --------------------------------------------------------------------------- defaults


def test_empty_config_defaults() -> None:
    config = parse_config({})
    assert config.agent is None
    assert config.student.max_plan_tokens == 2048
    assert config.student.max_step_tokens == 2048
    assert config.student.max_synthesis_tokens == 2048
    assert config.student.tool_choice == "auto"
    assert config.student.prompts.planner is None
    assert config.teacher.llm is None
    assert config.teacher.plan_cache_seconds == 300
    assert config.teacher.guidance_call is False
    assert config.orchestration.max_retries == 1
    assert config.orchestration.step_timeout_seconds == 900.0
    assert config.orchestration.max_parallel_steps == 8
    assert config.orchestration.max_plan_revisions == 1
    assert config.orchestration.rim_guidance_tag == "rim_feedback"
    assert config.orchestration.emit_intermediate_steps is True
    assert config.orchestration.trajectory_event_limit == 500
    assert config.orchestration.forced_mode is None
    assert config.orchestration.lanes == {}
    assert config.rim.judges == []
    assert config.rim.retry_threshold == 0.6
    assert config.rim.success_threshold == 0.7
    assert config.rim.reuse_validation_as_reward is True
    assert config.rim.reward_auto_lane is False
    assert config.adaptive_teaching.mode_override is None
    assert config.adaptive_teaching.default_tags == []
    assert config.adaptive_teaching.probe.fallback_mode == "paired"
    assert config.adaptive_teaching.enabled is True
    assert config.adaptive_teaching.certify_first_run is False
    assert config.adaptive_teaching.learning_history_limit == 10
    assert config.adaptive_teaching.probe.llm is None
    assert config.adaptive_teaching.probe.timeout_seconds == 15.0
    assert config.adaptive_teaching.probe.evidence_limit == 6
    thresholds = config.adaptive_teaching.probe.thresholds
    assert (thresholds.auto, thresholds.paired, thresholds.coach) == (0.85, 0.65, 0.35)
    assert config.learning.enabled is True  # Atlas's default; acts once a model is available
    assert config.learning.llm is None
    assert config.runtime_safety.drift.enabled is False
    assert config.runtime_safety.review.require_approval is False  # export: all succeeded sessions
    assert config.runtime_safety.review.default_export_statuses == ["approved"]
    assert config.prompt_rewrite is None
    assert config.storage == StorageConfig(
        backend="sqlite", path=".atlas_graph/atlas.sqlite", durability="sync"
    )
    assert config.metadata == {}


def test_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "")) == AtlasConfig()
    assert load_config(write(tmp_path, "# only a comment\n", "c.yaml")) == AtlasConfig()


def test_load_config_passes_an_atlas_config_through() -> None:
    config = parse_config({"orchestration": {"max_retries": 4}})
    assert load_config(config) is config


# --------------------------------------------------------------------------- loading


def test_atlas_style_fixture_loads(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ATLAS_SRE_YAML), environ={})
    agent = config.agent
    assert isinstance(agent, PythonAgentConfig)
    assert agent.name == "sre-agent"
    assert agent.system_prompt == "You are an SRE assistant.\n"
    assert (agent.import_path, agent.attribute, agent.working_directory) == ("json", "dumps", "./")
    assert config.student.prompts.planner == "{base_prompt}\nPlan the work."
    assert config.student.max_step_tokens == 1024
    assert config.teacher.llm is not None
    assert config.teacher.llm.model == "gpt-5"
    assert config.teacher.llm.temperature == 0.1
    assert config.teacher.max_review_tokens == 1536
    assert config.teacher.plan_cache_seconds == 60
    assert config.orchestration.step_timeout_seconds == 600
    assert config.rim.small_model is not None
    assert config.rim.small_model.model == "gpt-4o-mini"
    assert config.storage == StorageConfig()
    assert config.metadata == {"team": "sre"}


def test_yaml_file_and_dict_give_equal_configs(tmp_path: Path) -> None:
    from_file = load_config(write(tmp_path, ATLAS_SRE_YAML), environ={})
    from_dict = load_config(yaml.safe_load(ATLAS_SRE_YAML), environ={})
    assert from_file == from_dict
    assert from_file != AtlasConfig()


def test_path_given_as_str_or_path(tmp_path: Path) -> None:
    path = write(tmp_path, "orchestration:\n  max_retries: 3\n")
    assert load_config(str(path)).orchestration.max_retries == 3
    assert load_config(path).orchestration.max_retries == 3


def test_atlas_sdk_openai_example_loads(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ATLAS_OPENAI_EXAMPLE_YAML), environ={})
    assert isinstance(config.agent, ChatAgentConfig)
    assert config.agent.type == "openai"
    assert config.agent.llm.max_output_tokens == 1024
    assert [judge.identifier for judge in config.rim.judges] == ["process", "helpfulness"]
    assert [judge.kind for judge in config.rim.judges] == ["process", "helpfulness"]
    assert config.rim.judges[0].principles == ["Logical reasoning"]
    assert config.rim.judges[1].llm is not None
    assert config.rim.judges[1].llm.max_output_tokens == 512
    assert config.teacher.plan_cache_seconds == 600


def test_unedited_atlas_example_lists_every_unsupported_key(tmp_path: Path) -> None:
    data = yaml.safe_load(ATLAS_OPENAI_EXAMPLE_YAML)
    data["storage"] = {"database_url": "postgresql://localhost:5432/atlas"}
    data["adaptive_teaching"] = {"reward": {}}
    data["agent"]["metadata_digest"] = {}  # accepted since Atlas configs carry it
    path = write(tmp_path, yaml.safe_dump(data))
    message = file_error(path)
    assert message.count("not supported by atlas-graph yet") == 1
    assert "unknown field" not in message
    for key in ("adaptive_teaching.reward",):
        assert re.search(rf"(^{re.escape(str(path))}:|;) {re.escape(key)}: not supported", message)
    assert "storage" not in message


# --------------------------------------------------------------------------- environment


def test_env_variable_is_interpolated(tmp_path: Path) -> None:
    path = write(tmp_path, "teacher:\n  llm:\n    model: ${TEACHER_MODEL}\n")
    config = load_config(path, environ={"TEACHER_MODEL": "gpt-5-mini"})
    assert config.teacher.llm is not None
    assert config.teacher.llm.model == "gpt-5-mini"


def test_env_variable_inside_a_longer_string() -> None:
    config = parse_config(
        {"storage": {"path": "${DATA_DIR}/runs/${NAME:-atlas}.sqlite"}},
        environ={"DATA_DIR": "/srv"},
    )
    assert config.storage.path == "/srv/runs/atlas.sqlite"


def test_env_default_used_when_unset_and_ignored_when_set() -> None:
    data = {"orchestration": {"max_retries": "${RETRIES:-3}"}}
    assert parse_config(data, environ={}).orchestration.max_retries == 3
    assert parse_config(data, environ={"RETRIES": "0"}).orchestration.max_retries == 0


def test_env_empty_default() -> None:
    config = parse_config({"agent": python_agent(system_prompt="${PROMPT:-}")}, environ={})
    assert isinstance(config.agent, PythonAgentConfig)
    assert config.agent.system_prompt == ""


def test_env_nested_in_lists() -> None:
    data = {
        "adaptive_teaching": {"default_tags": ["team:${TEAM}", "${ENV:-dev}"]},
        "rim": {"judges": [{"identifier": "${JUDGE}", "principles": ["${P1}", "fixed"]}]},
    }
    environ = {"TEAM": "sre", "JUDGE": "process", "P1": "Be correct"}
    config = parse_config(data, environ=environ)
    assert config.adaptive_teaching.default_tags == ["team:sre", "dev"]
    assert config.rim.judges[0].identifier == "process"
    assert config.rim.judges[0].principles == ["Be correct", "fixed"]


def test_env_interpolated_value_is_validated() -> None:
    message = config_error(
        {"orchestration": {"max_retries": "${RETRIES}"}}, environ={"RETRIES": "many"}
    )
    assert message.startswith("cfg.yaml: orchestration.max_retries: ")
    assert "integer" in message
    assert "'many'" in message


def test_missing_env_variable_names_file_key_path_and_variable(tmp_path: Path) -> None:
    path = write(tmp_path, "teacher:\n  llm:\n    model: ${TEACHER_MODEL}\n")
    message = file_error(path, environ={"OTHER": "x"})
    assert message == f"{path}: teacher.llm.model: environment variable TEACHER_MODEL is not set"


def test_missing_env_variable_in_a_list_names_the_index() -> None:
    data = {"rim": {"judges": [{"identifier": "a"}, {"identifier": "${JUDGE_B}"}]}}
    message = config_error(data, environ={})
    assert message.startswith("cfg.yaml: rim.judges[1].identifier: ")
    assert "JUDGE_B" in message


def test_explicit_environ_replaces_the_process_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ATLAS_GRAPH_TEST_MODEL", "from-os")
    data = {"teacher": {"llm": {"model": "${ATLAS_GRAPH_TEST_MODEL}"}}}
    from_os = parse_config(data)
    assert from_os.teacher.llm is not None
    assert from_os.teacher.llm.model == "from-os"
    message = config_error(data, environ={})
    assert "ATLAS_GRAPH_TEST_MODEL is not set" in message


def test_text_without_placeholders_is_left_alone() -> None:
    prompt = "Costs $5; use {base_prompt} and $HOME literally."
    config = parse_config({"agent": python_agent(system_prompt=prompt)}, environ={})
    assert isinstance(config.agent, PythonAgentConfig)
    assert config.agent.system_prompt == prompt


# --------------------------------------------------------------------------- unknown keys


def test_unknown_top_level_key_lists_allowed_fields(tmp_path: Path) -> None:
    path = write(tmp_path, "agnet:\n  type: python\n")
    message = file_error(path)
    assert message.startswith(f"{path}: agnet: unknown field, expected one of ")
    for field in TOP_LEVEL_FIELDS:
        assert field in message


def test_unknown_nested_key_names_full_path_and_allowed_fields(tmp_path: Path) -> None:
    path = write(tmp_path, "teacher:\n  llmm:\n    model: gpt-5\n")
    message = file_error(path)
    assert message.startswith(f"{path}: teacher.llmm: unknown field, expected one of ")
    allowed = message.split("expected one of ", 1)[1].split(", ")
    assert "llm" in allowed
    assert "plan_cache_seconds" in allowed
    assert "max_retries" not in allowed  # an orchestration field, not a teacher one


def test_unknown_key_deep_in_a_list_names_the_index_and_llm_fields() -> None:
    data = {"rim": {"judges": [{"identifier": "a", "llm": {"model": "m", "temprature": 0}}]}}
    message = config_error(data)
    assert message.startswith("cfg.yaml: rim.judges[0].llm.temprature: unknown field,")
    assert "temperature" in message
    assert "api_key_env" in message


def test_unknown_agent_key_lists_fields_of_that_agent_type() -> None:
    message = config_error({"agent": python_agent(modle="x")})
    assert message.startswith("cfg.yaml: agent.modle: unknown field, expected one of ")
    assert "import_path" in message
    assert "working_directory" in message
    assert "llm" in message.split("expected one of ", 1)[1].split(", ")  # Atlas's agent.llm
    assert "input_key" not in message.split("expected one of ", 1)[1].split(", ")

    message = config_error({"agent": {"type": "litellm", "llm": {"model": "m"}, "import": "x"}})
    assert message.startswith("cfg.yaml: agent.import: unknown field, expected one of ")
    assert "llm" in message.split("expected one of ", 1)[1].split(", ")
    assert "import_path" not in message


def test_unknown_lane_override_key_lists_lane_fields() -> None:
    message = config_error({"orchestration": {"lanes": {"paired": {"retries": 2}}}})
    assert message.startswith("cfg.yaml: orchestration.lanes.paired.retries: unknown field,")
    assert "max_retries" in message
    assert "validate" in message


def test_unknown_agent_key_named_like_an_agent_type_keeps_its_path() -> None:
    message = config_error({"agent": python_agent(openai={"model": "m"})})
    assert message.startswith("cfg.yaml: agent.openai: unknown field")


def test_unknown_learning_key_says_what_is_expected() -> None:
    message = config_error({"learning": {"enable": True}})
    assert message.startswith("cfg.yaml: learning.enable: unknown field, expected one of ")
    assert "pruning_config" in message


def test_unknown_lane_name_is_rejected_with_the_lane_names() -> None:
    message = config_error({"orchestration": {"lanes": {"turbo": {"max_retries": 1}}}})
    assert "orchestration.lanes" in message
    assert "'turbo'" in message
    for lane in ("auto", "paired", "coach", "escalate"):
        assert lane in message


def test_unknown_lane_name_has_a_clean_key_path() -> None:
    message = config_error({"orchestration": {"lanes": {"turbo": {}}}})
    assert "[key]" not in message


# --------------------------------------------------------------------------- not yet supported


@pytest.mark.parametrize(
    ("data", "key", "feature"),
    [
        ({"adaptive_teaching": {"reward": {}}}, "adaptive_teaching.reward", "reward hooks"),
    ],
)
def test_not_yet_supported_atlas_keys(data: dict[str, Any], key: str, feature: str) -> None:
    message = config_error(data)
    assert message.startswith(f"cfg.yaml: {key}: not supported by atlas-graph yet (")
    assert feature in message
    assert "unknown field" not in message


# --------------------------------------------------------------------------- wrong types


def test_negative_max_retries_names_path_and_bound(tmp_path: Path) -> None:
    path = write(tmp_path, "orchestration:\n  max_retries: -1\n")
    message = file_error(path)
    assert message.startswith(f"{path}: orchestration.max_retries: ")
    assert "greater than or equal to 0" in message
    assert "-1" in message


def test_negative_trajectory_event_limit_names_path_and_bound(tmp_path: Path) -> None:
    path = write(tmp_path, "orchestration:\n  trajectory_event_limit: -5\n")
    message = file_error(path)
    assert message.startswith(f"{path}: orchestration.trajectory_event_limit: ")
    assert "greater than or equal to 0" in message


def test_non_integer_max_retries_names_path_and_type(tmp_path: Path) -> None:
    path = write(tmp_path, 'orchestration:\n  max_retries: "abc"\n')
    message = file_error(path)
    assert message.startswith(f"{path}: orchestration.max_retries: ")
    assert "valid integer" in message
    assert "'abc'" in message


def test_wrong_enum_value_lists_choices() -> None:
    message = config_error({"student": {"tool_choice": "none"}})
    assert message.startswith("cfg.yaml: student.tool_choice: ")
    assert "'auto'" in message
    assert "'required'" in message
    assert "'none'" in message


def test_several_problems_joined_on_one_line() -> None:
    message = config_error(
        {"agnet": {}, "orchestration": {"max_retries": -1}, "rim": {"retry_threshold": 2}}
    )
    assert message.count("cfg.yaml") == 1
    for key in ("agnet", "orchestration.max_retries", "rim.retry_threshold"):
        assert re.search(rf"(^cfg\.yaml:|;) {re.escape(key)}: ", message), key
    assert "greater than or equal to 0 (got -1)" in message
    assert "less than or equal to 1 (got 2)" in message


def test_rim_guidance_tag_must_be_a_tag_name() -> None:
    message = config_error({"orchestration": {"rim_guidance_tag": "rim feedback"}})
    assert message.startswith("cfg.yaml: orchestration.rim_guidance_tag: ")
    assert "pattern" in message


def test_multiline_values_still_give_one_line() -> None:
    message = config_error({"student": {"tool_choice": "auto\nplease"}})
    assert "student.tool_choice" in message


# --------------------------------------------------------------------------- file problems


def test_invalid_yaml_names_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "teacher:\n  llm: [unclosed\n  max_review_tokens: 3\n")
    message = file_error(path)
    assert message.startswith(f"{path}: invalid YAML at line ")
    assert "column" in message


def test_invalid_yaml_reports_the_right_line(tmp_path: Path) -> None:
    path = write(tmp_path, "student:\n  tool_choice: auto\n\tbad: tab\n")
    message = file_error(path)
    assert " at line 3, column 1" in message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    assert file_error(path) == f"{path}: file not found"


def test_directory_instead_of_file(tmp_path: Path) -> None:
    message = file_error(tmp_path)
    assert message.startswith(f"{tmp_path}: cannot read")


def test_top_level_list_is_a_clear_error(tmp_path: Path) -> None:
    path = write(tmp_path, "- agent\n- teacher\n")
    assert file_error(path) == f"{path}: expected a mapping at the top level, got list"


def test_top_level_scalar_is_a_clear_error(tmp_path: Path) -> None:
    path = write(tmp_path, "just text\n")
    assert file_error(path) == f"{path}: expected a mapping at the top level, got str"


def test_dict_source_is_named_config() -> None:
    with pytest.raises(ConfigError, match=r"^<config>: bogus: unknown field"):
        load_config({"bogus": 1})


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


# --------------------------------------------------------------------------- sections


def test_storage_null_gives_default_storage() -> None:
    assert parse_config({"storage": None}).storage == StorageConfig()
    assert parse_config({"storage": {"backend": "memory"}}).storage.backend == "memory"


def test_python_agent_needs_import_path(tmp_path: Path) -> None:
    path = write(tmp_path, "agent:\n  type: python\n  name: a\n")
    message = file_error(path)
    assert message == f"{path}: agent.import_path: required field is missing"


def test_unsupported_agent_type_names_agent_type_and_tags() -> None:
    message = config_error({"agent": {"type": "grpc", "transport": {}}})
    assert message.startswith("cfg.yaml: agent.type: ")
    assert "'grpc'" in message
    for tag in ("'python'", "'openai'", "'litellm'", "'http_api'", "'runnable'"):
        assert tag in message


def test_atlas_http_agent_loads_with_env_headers() -> None:
    config = parse_config(
        {
            "agent": {
                "type": "http_api",
                "name": "remote",
                "system_prompt": "be brief",
                "transport": {
                    "base_url": "${AGENT_URL:-http://127.0.0.1:9/agent}",
                    "headers": {"X-Team": "sre"},
                    "headers_env": {"Authorization": "AGENT_TOKEN"},
                    "timeout_seconds": 12,
                    "retry": {"attempts": 2, "backoff_seconds": 0.1},
                },
                "payload_template": {"mode": "chat"},
                "result_path": ["data", "output"],
            }
        },
        environ={},
    )
    agent = config.agent
    assert agent is not None and agent.type == "http_api"
    assert agent.transport.base_url == "http://127.0.0.1:9/agent"
    assert agent.transport.headers_env == {"Authorization": "AGENT_TOKEN"}
    assert agent.transport.retry.attempts == 2
    assert agent.result_path == ["data", "output"]


def test_http_agent_needs_a_url_and_names_its_fields() -> None:
    message = config_error({"agent": {"type": "http_api", "transport": {}}})
    assert message == "cfg.yaml: agent.transport.base_url: required field is missing"
    message = config_error(
        {"agent": {"type": "http_api", "transport": {"base_url": "http://x", "verify": 1}}}
    )
    assert message.startswith("cfg.yaml: agent.transport.verify: unknown field, expected one of ")
    assert "headers_env" in message


def test_python_agent_generator_flag_and_chat_response_format_load() -> None:
    assert (
        parse_config({"agent": python_agent(allow_generator=False)}).agent.allow_generator is False
    )
    schema = {"type": "json_schema", "json_schema": {"name": "A", "schema": {"type": "object"}}}
    config = parse_config(
        {"agent": {"type": "openai", "llm": {"model": "m"}, "response_format": schema}}
    )
    assert config.agent.response_format == schema


def test_tools_need_unique_names_and_import_references() -> None:
    tool = {"name": "add", "description": "adds"}
    message = config_error({"agent": python_agent(tools=[tool, tool])})
    assert message.startswith("cfg.yaml: agent.tools: ")
    assert "repeated: ['add']" in message
    message = config_error({"agent": python_agent(tools=[{**tool, "implementation": "nocolon"}])})
    assert message.startswith("cfg.yaml: agent.tools[0].implementation: ")
    message = config_error({"agent": python_agent(max_tool_rounds=0)})
    assert message.startswith("cfg.yaml: agent.max_tool_rounds: ")


def test_runnable_agent_loads() -> None:
    config = parse_config({"agent": {"type": "runnable", "import_path": "pkg.graphs:agent"}})
    assert config.agent is not None and config.agent.type == "runnable"
    assert config.agent.max_tool_rounds == 8


def test_agent_without_type_is_an_error() -> None:
    message = config_error({"agent": {"import_path": "json"}})
    assert message.startswith("cfg.yaml: agent")
    assert "type" in message


@pytest.mark.parametrize("kind", ["litellm", "openai"])
def test_chat_agent_with_llm_loads(kind: str) -> None:
    config = parse_config(
        {"agent": {"type": kind, "name": "chat", "llm": {"provider": "anthropic", "model": "m"}}}
    )
    assert isinstance(config.agent, ChatAgentConfig)
    assert config.agent.type == kind
    assert config.agent.llm.provider == "anthropic"
    assert config.agent.llm.model == "m"


def test_chat_agent_needs_llm() -> None:
    message = config_error({"agent": {"type": "openai"}})
    assert message == "cfg.yaml: agent.llm: required field is missing"


def test_chat_agent_rejects_import_path() -> None:
    message = config_error({"agent": {"type": "openai", "llm": {"model": "m"}, "import_path": "x"}})
    assert message.startswith("cfg.yaml: agent.import_path: unknown field")


def test_llm_needs_a_model() -> None:
    assert config_error({"teacher": {"llm": {"provider": "openai"}}}) == (
        "cfg.yaml: teacher.llm.model: required field is missing"
    )


def test_llm_retry_block_gives_retries() -> None:
    assert LLMParameters(model="m").retries == 2
    assert LLMParameters(model="m", retry={"attempts": 3}).retries == 2
    assert LLMParameters(model="m", retry={"attempts": 1}).retries == 0
    assert LLMParameters(model="m", retry={"attempts": 5}).retries == 4
    config = parse_config({"teacher": {"llm": {"model": "m", "retry": {"attempts": 4}}}})
    assert config.teacher.llm is not None
    assert config.teacher.llm.retries == 3


def test_llm_explicit_max_retries_wins() -> None:
    llm = LLMParameters(model="m", max_retries=5, retry={"attempts": 3})
    assert llm.retries == 5
    assert LLMParameters(model="m", max_retries=0, retry={"attempts": 3}).retries == 0


def test_llm_retry_attempts_must_be_positive() -> None:
    message = config_error({"teacher": {"llm": {"model": "m", "retry": {"attempts": 0}}}})
    assert message.startswith("cfg.yaml: teacher.llm.retry.attempts: ")
    assert "greater than or equal to 1" in message


def test_llm_unknown_provider() -> None:
    message = config_error({"teacher": {"llm": {"model": "m", "provider": "cohere"}}})
    assert message.startswith("cfg.yaml: teacher.llm.provider: ")
    assert "'anthropic'" in message


def test_retry_threshold_above_success_threshold_rejected() -> None:
    message = config_error({"rim": {"retry_threshold": 0.9, "success_threshold": 0.5}})
    assert message.startswith("cfg.yaml: rim: ")
    assert "retry_threshold (0.9) must not exceed success_threshold (0.5)" in message


def test_equal_thresholds_accepted() -> None:
    rim = parse_config({"rim": {"retry_threshold": 0.8, "success_threshold": 0.8}}).rim
    assert (rim.retry_threshold, rim.success_threshold) == (0.8, 0.8)


def test_default_tags_string_becomes_list() -> None:
    assert parse_config({"adaptive_teaching": {"default_tags": "x"}}).adaptive_teaching == (
        parse_config({"adaptive_teaching": {"default_tags": ["x"]}}).adaptive_teaching
    )
    assert parse_config(
        {"adaptive_teaching": {"default_tags": "x"}}
    ).adaptive_teaching.default_tags == ["x"]
    assert (
        parse_config({"adaptive_teaching": {"default_tags": None}}).adaptive_teaching.default_tags
        == []
    )


def test_python_judge_needs_import_path() -> None:
    message = config_error({"rim": {"judges": [{"identifier": "j", "kind": "python"}]}})
    assert message.startswith("cfg.yaml: rim.judges[0]: a python judge needs import_path")


def test_import_path_only_for_python_judges() -> None:
    message = config_error({"rim": {"judges": [{"identifier": "j", "import_path": "m:f"}]}})
    assert "import_path is only for kind: python" in message


def test_tool_required_parameters_must_be_defined() -> None:
    tool = {"name": "t", "description": "d", "parameters": {"required": ["q"]}}
    message = config_error({"agent": python_agent(tools=[tool])})
    assert message.startswith("cfg.yaml: agent.tools[0].parameters: ")
    assert "['q']" in message


def test_tool_output_schema_alias_and_openai_form() -> None:
    tool = {
        "name": "lookup",
        "description": "Look up a host.",
        "parameters": {"properties": {"host": {"type": "string"}}, "required": ["host"]},
        "outputSchema": {"type": "object"},
    }
    config = parse_config({"agent": python_agent(tools=[tool])})
    assert config.agent is not None
    loaded = config.agent.tools[0]
    assert loaded.output_schema == {"type": "object"}
    assert loaded.as_openai_tool() == {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Look up a host.",
            "parameters": {
                "type": "object",
                "properties": {"host": {"type": "string"}},
                "required": ["host"],
                "additionalProperties": False,
            },
        },
    }


def test_lane_overrides_and_forced_mode_load() -> None:
    config = parse_config(
        {
            "orchestration": {
                "forced_mode": "coach",
                "lanes": {"paired": {"max_retries": 2}, "auto": {"validate": True}},
            }
        }
    )
    assert config.orchestration.forced_mode == "coach"
    assert config.orchestration.lanes["paired"].changes() == {"max_retries": 2}
    assert config.orchestration.lanes["auto"].changes() == {"validate": True}


def test_forced_mode_must_be_a_lane() -> None:
    message = config_error({"orchestration": {"forced_mode": "turbo"}})
    assert message.startswith("cfg.yaml: orchestration.forced_mode: ")
    assert "'escalate'" in message


def test_config_is_frozen() -> None:
    config = parse_config({})
    with pytest.raises(ValueError):
        config.orchestration.max_retries = 5  # type: ignore[misc]


def test_duplicate_yaml_keys_are_an_error_with_their_line(tmp_path: Path) -> None:
    path = write(
        tmp_path, "orchestration:\n  max_retries: 1\nrim: {}\norchestration:\n  max_retries: 3\n"
    )
    message = file_error(path)
    assert message.startswith(f"{path}: invalid YAML at line 4")
    assert "duplicate key 'orchestration'" in message


# --------------------------------------------------------------------------- adaptive sections


def test_atlas_adaptive_learning_and_safety_blocks_load() -> None:
    llm = {"provider": "xai", "model": "xai/grok-4-fast", "api_key_env": "XAI_API_KEY"}
    config = parse_config(
        {
            "adaptive_teaching": {
                "enabled": True, "certify_first_run": True, "learning_history_limit": 20,
                "probe": {"llm": llm, "thresholds": {"auto": 0.9, "paired": 0.6, "coach": 0.3},
                          "fallback_mode": "coach", "evidence_limit": 4, "timeout_seconds": 5},
            },
            "learning": {"enabled": True, "update_enabled": False, "history_limit": 7},
            "runtime_safety": {
                "drift": {"enabled": True, "window": 30, "z_threshold": 2.5, "min_baseline": 4},
                "review": {"require_approval": False,
                           "default_export_statuses": ["approved", "pending"]},
            },
            "prompt_rewrite": {"llm": llm, "max_tokens": 512, "temperature": 0.2},
        }
    )  # fmt: skip
    assert config.adaptive_teaching.probe.llm is not None
    assert config.adaptive_teaching.probe.llm.model == "xai/grok-4-fast"
    assert config.adaptive_teaching.probe.thresholds.auto == 0.9
    assert config.learning.update_enabled is False
    assert config.runtime_safety.drift.window == 30
    assert config.runtime_safety.review.default_export_statuses == ["approved", "pending"]
    assert config.prompt_rewrite is not None and config.prompt_rewrite.max_tokens == 512


def test_empty_prompt_rewrite_block_means_no_rewrite() -> None:
    assert parse_config({"prompt_rewrite": None}).prompt_rewrite is None


def test_prompt_rewrite_needs_an_llm() -> None:
    message = config_error({"prompt_rewrite": {"max_tokens": 256}})
    assert message == "cfg.yaml: prompt_rewrite.llm: required field is missing"


def test_unknown_review_status_is_rejected() -> None:
    message = config_error({"runtime_safety": {"review": {"default_export_statuses": ["ok"]}}})
    assert message.startswith("cfg.yaml: runtime_safety.review.default_export_statuses[0]: ")
    assert "'pending'" in message


def test_atlas_storage_keys_load_as_they_are() -> None:
    storage = parse_config({"storage": {
        "database_url": "postgresql://atlas:s3cret@db:5432/atlas", "min_connections": 2,
        "max_connections": 8, "statement_timeout_seconds": 30, "apply_schema_on_connect": False,
    }}).storage  # fmt: skip
    assert storage.backend == "postgres"  # a URL alone means PostgreSQL, as in Atlas
    assert (storage.min_size, storage.max_size) == (2, 8)
    assert storage.statement_timeout_seconds == 30
    assert storage.apply_schema_on_connect is False
    assert storage.durability == "sync"
    assert "s3cret" not in repr(storage)


def test_storage_pool_sizes_and_explicit_backend() -> None:
    storage = parse_config({"storage": {"backend": "postgres", "min_size": 0, "max_size": 3}})
    assert (storage.storage.backend, storage.storage.min_size) == ("postgres", 0)
    sqlite = parse_config({"storage": {"backend": "sqlite", "database_url": "postgresql://x"}})
    assert sqlite.storage.backend == "sqlite"
    message = config_error({"storage": {"min_connections": 5, "max_connections": 2}})
    assert "min_size (5) must not exceed max_size (2)" in message
    assert "storage.backend" in config_error({"storage": {"backend": "mysql"}})


ATLAS_LEARNING_BLOCK = """\
learning:
  enabled: true
  update_enabled: true
  provisional_acceptance: true
  llm:
    provider: gemini
    model: gemini/gemini-2.5-flash
    api_key_env: GEMINI_API_KEY
    temperature: 0.1
  prompts:
    synthesizer: Write playbook entries.
  history_limit: 12
  session_note_enabled: true
  apply_to_prompts: true
  schema:
    version: playbook_entry.v1
    allowed_runtime_handles: [search_docs]
    runtime_handle_prefixes: ["mcp."]
    cue_types: [regex, keyword]
    default_scope_category: reinforcement
  rubric_weights: {actionability: 0.5, generality: 0.2, hookability: 0.2, concision: 0.1}
  gates:
    enforce_actionability: true
    enforce_cue: true
    enforce_generality: false
    max_text_length: 300
    allowed_proper_nouns: [Kubernetes]
    banned_incident_tokens: ["INC-"]
  pruning_config:
    min_sessions: 8
    min_cue_hit_rate: 0.1
    min_reward_delta: 0.02
    min_transfer_sessions: 16
  usage_tracking:
    enabled: true
    capture_examples: true
    max_examples_per_entry: 3
"""


def test_atlas_learning_playbook_block_loads_every_key(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ATLAS_LEARNING_BLOCK)).learning
    assert config.llm is not None and config.llm.provider == "gemini"
    assert config.prompts.synthesizer == "Write playbook entries."
    assert config.history_limit == 12
    schema = config.playbook_schema
    assert schema.cue_types == ["regex", "keyword"]
    assert schema.default_scope_category == "reinforcement"
    assert schema.runtime_handle_prefixes == ["mcp."]
    assert config.rubric_weights.actionability == 0.5
    assert config.gates.enforce_generality is False and config.gates.max_text_length == 300
    assert config.pruning_config.min_transfer_sessions == 16
    assert config.usage_tracking.max_examples_per_entry == 3


def test_unknown_playbook_schema_key_names_the_schema_fields() -> None:
    message = config_error({"learning": {"schema": {"versions": "v1"}}})
    assert message.startswith("cfg.yaml: learning.schema.versions: unknown field, expected one of")
    assert "allowed_runtime_handles" in message
    assert "playbook_entry.v2" in config_error(
        {"learning": {"schema": {"version": "playbook_entry.v2"}}}
    )
