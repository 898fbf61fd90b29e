"""Configuration: strict pydantic models in the layout of Atlas SDK's YAML.

An Atlas user's config loads as it is where atlas-graph supports the feature; any other key is
an error that names the file, the key path and what was expected, in one line. Every field
defined here changes behaviour somewhere.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Final, Literal, get_args

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from atlas_graph.errors import ConfigError
from atlas_graph.lanes import Lane
from atlas_graph.state import ReviewStatus

Provider = Literal[
    "openai", "azure-openai", "anthropic", "gemini", "google", "xai", "bedrock", "openai-compatible"
]


class _Strict(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False, extra="forbid", frozen=True)  # JSON numbers


class RetrySettings(_Strict):
    """Atlas's nested retry block for an LLM; ``attempts`` counts the first call too."""

    attempts: int = Field(default=1, ge=1, le=10)
    backoff_seconds: float = Field(default=1.0, ge=0)


class LLMParameters(_Strict):
    """How to reach one chat model. The key is read from ``api_key_env`` at call time."""

    provider: Provider = "openai"
    model: str
    api_key_env: str | None = "OPENAI_API_KEY"
    api_base: str | None = None
    organization: str | None = None
    temperature: float = Field(default=0.0, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_output_tokens: int | None = Field(default=None, ge=1)
    timeout_seconds: float = Field(default=60.0, gt=0)
    max_retries: int | None = Field(default=None, ge=0)
    retry: RetrySettings | None = None
    additional_headers: dict[str, str] = Field(default_factory=dict)
    reasoning_effort: Literal["low", "medium", "high"] | None = None
    structured_output: Literal["auto", "function_calling", "json_schema", "json_mode"] = "auto"
    """How the teacher, judges and probe ask this model for JSON (see ``structured.py``):
    ``auto`` uses function calling on OpenAI's endpoint and ``json_schema`` elsewhere."""

    @property
    def retries(self) -> int:
        """Transport retries: ``max_retries`` when given, else Atlas's ``retry.attempts - 1``."""
        if self.max_retries is not None:
            return self.max_retries
        return self.retry.attempts - 1 if self.retry else 2


class ToolParameters(_Strict):
    """JSON schema of a tool's arguments."""

    type: Literal["object"] = "object"
    properties: dict[str, Any] = Field(default_factory=dict)
    required: list[str] = Field(default_factory=list)
    additionalProperties: bool = False

    @model_validator(mode="after")
    def _required_are_defined(self) -> ToolParameters:
        missing = [name for name in self.required if name not in self.properties]
        if missing:
            raise ValueError(f"required parameters not in properties: {missing}")
        return self


_IMPORT_REFERENCE = r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$"


class ToolDefinition(_Strict):
    """A tool the agent may call; ``implementation`` (``module:function``) lets the runtime run it.

    The step's tool loop calls the implementation with the arguments as keyword arguments and
    sends its result back to the agent; a tool without one answers with an error the agent
    can read.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str
    parameters: ToolParameters = Field(default_factory=ToolParameters)
    output_schema: dict[str, Any] | None = Field(default=None, alias="outputSchema")
    implementation: str | None = Field(default=None, pattern=_IMPORT_REFERENCE)

    def as_openai_tool(self) -> dict[str, Any]:
        """The OpenAI function-tool form that ``bind_tools`` accepts."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters.model_dump(),
            },
        }


class MetadataDigestConfig(BaseModel):
    """Atlas's ``agent.metadata_digest``: a bounded JSON digest of the session metadata.

    Python agents get it as ``metadata["metadata_digest"]`` (at most ``max_chars`` characters;
    Atlas's ``char_budget`` is read as that). Atlas's other digest keys (per-provider budgets,
    section limits) load and are kept but not used: our prompts carry no metadata by default.
    """

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    enabled: bool = True
    max_chars: int = Field(default=4000, ge=64, alias="char_budget")


class _AgentBase(_Strict):
    name: str = "agent"
    metadata_digest: MetadataDigestConfig | None = None
    system_prompt: str = ""
    tools: list[ToolDefinition] = Field(default_factory=list)
    max_tool_rounds: int = Field(
        default=8, ge=1, le=100,
        description="agent ⇄ tool rounds per attempt; an attempt still calling tools after "
        "this many fails",
    )  # fmt: skip

    @field_validator("tools")
    @classmethod
    def _unique_tool_names(cls, tools: list[ToolDefinition]) -> list[ToolDefinition]:
        names = [tool.name for tool in tools]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"tool names must be unique, repeated: {duplicates}")
        return tools


class PythonAgentConfig(_AgentBase):
    """The student's agent is a Python callable (``import_path`` + ``attribute``)."""

    type: Literal["python"]
    import_path: str
    attribute: str | None = None
    working_directory: str | None = None
    llm: LLMParameters | None = Field(
        default=None,
        description="the model the callable uses itself; passed as metadata['llm_config']",
    )
    allow_generator: bool = Field(
        default=True, description="concatenate the chunks of generator agents (false: an error)"
    )


class ChatAgentConfig(_AgentBase):
    """The student is a chat model (Atlas names this adapter ``openai`` or ``litellm``)."""

    type: Literal["openai", "litellm"]
    llm: LLMParameters
    response_format: dict[str, Any] | None = Field(
        default=None,
        description="OpenAI response_format (e.g. a json_schema) for execute and synthesize",
    )


class HttpRetry(_Strict):
    """Retries of the HTTP agent; ``attempts`` counts the first request too."""

    attempts: int = Field(default=3, ge=1, le=10)
    backoff_seconds: float = Field(default=0.5, ge=0)


class HttpTransport(_Strict):
    """Where and how the HTTP agent is reached.

    ``headers_env`` maps a header to the environment variable holding its value, read at
    request time, so secrets stay out of the YAML and of the loaded config.
    """

    base_url: str = Field(pattern=r"^https?://")
    headers: dict[str, str] = Field(default_factory=dict)
    headers_env: dict[str, str] = Field(default_factory=dict)
    timeout_seconds: float = Field(default=60.0, gt=0)
    retry: HttpRetry = Field(default_factory=HttpRetry)


class HttpAgentConfig(_AgentBase):
    """The student's agent is an HTTP endpoint (Atlas's ``http_api`` adapter)."""

    type: Literal["http_api"]
    transport: HttpTransport
    payload_template: dict[str, Any] = Field(default_factory=dict)
    result_path: list[str] | None = None

    @field_validator("result_path", mode="before")
    @classmethod
    def _path_as_list(cls, value: Any) -> Any:
        return value.split(".") if isinstance(value, str) else value


class RunnableAgentConfig(_AgentBase):
    """The student's agent is a LangChain Runnable or compiled LangGraph graph."""

    type: Literal["runnable"]
    import_path: str
    attribute: str | None = None
    working_directory: str | None = None
    input_key: str | None = Field(
        default=None,
        description="pass {input_key: messages}; default 'messages' for graphs, else a list",
    )


AgentConfig = Annotated[
    PythonAgentConfig | ChatAgentConfig | HttpAgentConfig | RunnableAgentConfig,
    Field(discriminator="type"),
]


StudentMode = Literal["planner", "executor", "synthesizer"]
"""The student's duties, each with its own system prompt."""
TeacherDuty = Literal["plan_review", "validation", "guidance"]
"""The teacher's duties, each with its own system prompt."""


class StudentPrompts(_Strict):
    """System prompts per student mode; ``{base_prompt}`` is the agent's system prompt."""

    planner: str | None = None
    executor: str | None = None
    synthesizer: str | None = None


class StudentConfig(_Strict):
    """How the student plans, executes and synthesizes."""

    prompts: StudentPrompts = Field(default_factory=StudentPrompts)
    prompt_guidance: dict[StudentMode, str] = Field(default_factory=dict)
    max_plan_tokens: int = Field(default=2048, ge=1)
    max_step_tokens: int = Field(default=2048, ge=1)
    max_synthesis_tokens: int = Field(default=2048, ge=1)
    tool_choice: Literal["auto", "required"] = "auto"


class TeacherPrompts(_Strict):
    """System prompts per teacher duty."""

    plan_review: str | None = None
    validation: str | None = None
    guidance: str | None = None


class TeacherConfig(_Strict):
    """The teacher: an LLM, or Python callables for programmatic supervision."""

    llm: LLMParameters | None = None
    validator: str | None = Field(
        default=None, description="module:function that judges an attempt instead of the LLM"
    )
    plan_reviewer: str | None = Field(
        default=None, description="module:function that reviews a plan instead of the LLM"
    )
    max_review_tokens: int | None = Field(default=None, ge=1)
    validation_max_tokens: int | None = Field(default=None, ge=1)
    guidance_max_tokens: int | None = Field(default=None, ge=1)
    guidance_call: bool = Field(
        default=False,
        description="ask the teacher for guidance in a separate call instead of reusing the "
        "verdict's guidance",
    )
    plan_cache_seconds: int = Field(default=300, ge=0)
    plan_approval: Literal["auto", "human"] = Field(
        default="auto",
        description="human: the review pauses the run until a person approves, edits or "
        "rejects the reviewed plan",
    )
    prompts: TeacherPrompts = Field(default_factory=TeacherPrompts)
    prompt_guidance: dict[TeacherDuty, str] = Field(default_factory=dict)


class LaneOverride(_Strict):
    """Changes to one row of the lane table."""

    plan: bool | None = None
    review: bool | None = None
    single_step: bool | None = None
    validate_: bool | None = Field(default=None, alias="validate")
    max_retries: int | None = Field(default=None, ge=0)
    reward: bool | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def changes(self) -> dict[str, Any]:
        """Only the fields that were set, named as ``LanePolicy`` names them."""
        values = self.model_dump(exclude_none=True)
        if "validate_" in values:
            values["validate"] = values.pop("validate_")
        return values


class BudgetConfig(_Strict):
    """The most one session may spend; over it, no more retries, steps or reward calls."""

    max_tokens: int | None = Field(default=None, ge=1, description="tokens over all roles")
    max_cost: float | None = Field(
        default=None, gt=0, description="US dollars at the prices of `pricing`"
    )


class ModelPrice(_Strict):
    """US dollars per million tokens of one model."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)


class OrchestrationConfig(_Strict):
    """Retries, timeouts, parallelism and lane choice."""

    max_retries: int = Field(default=1, ge=0)
    step_timeout_seconds: float = Field(default=900.0, gt=0)
    max_parallel_steps: int = Field(default=8, ge=1)
    max_plan_revisions: int = Field(
        default=1, ge=0, description="redrafts after a rejected plan before the last draft runs"
    )
    rim_guidance_tag: str = Field(
        default="rim_feedback", pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$",
        description="tag that wraps teacher guidance in the student's prompt",
    )  # fmt: skip
    emit_intermediate_steps: bool = Field(
        default=True, description="emit per-attempt events; off leaves only session-level ones"
    )
    trajectory_event_limit: int = Field(
        default=500,
        ge=0,
        le=1_000_000,
        description="events kept in state for the export (0 keeps none)",
    )
    forced_mode: Lane | None = None
    lanes: dict[Lane, LaneOverride] = Field(default_factory=dict)
    budget: BudgetConfig | None = None


BuiltinJudge = Literal["process", "helpfulness"]


class JudgeConfig(_Strict):
    """One reward judge: an LLM with a prompt, or a Python function."""

    identifier: str = Field(min_length=1)
    kind: Literal["process", "helpfulness", "custom", "python"] = "process"
    weight: float = Field(default=1.0, gt=0, description="share in the weighted mean")
    enabled: bool = True
    llm: LLMParameters | None = None
    prompt: str | None = None
    principles: list[str] = Field(default_factory=list)
    max_tokens: int = Field(default=1024, ge=1)
    import_path: str | None = None

    @model_validator(mode="after")
    def _python_needs_import_path(self) -> JudgeConfig:
        if self.kind == "python" and not self.import_path:
            raise ValueError("a python judge needs import_path ('module:function')")
        if self.kind != "python" and self.import_path:
            raise ValueError("import_path is only for kind: python")
        return self


# Atlas spellings that name the same setting as an atlas-graph key.
_RIM_ALIASES = {"arbiter": "large_model", "aggregation_strategy": "aggregation"}


class RimConfig(_Strict):
    """Reward: judges, their models, sampling, escalation to the arbiter and thresholds.

    Both Atlas layouts load: judges with their own ``llm`` plus an ``arbiter`` model, or
    ``small_model``/``large_model`` with ``active_judges`` naming built-in judges.
    """

    judges: list[JudgeConfig] = Field(default_factory=list)
    active_judges: dict[BuiltinJudge, bool] | None = Field(
        default=None, description="built-in judges to run next to `judges` (name: on/off)"
    )
    small_model: LLMParameters | None = Field(default=None, description="default judge model")
    large_model: LLMParameters | None = Field(default=None, description="the arbiter model")
    judge_prompt: str | None = None
    temperatures: list[float] = Field(default_factory=lambda: [0.2, 0.5, 0.8])
    variance_threshold: float = Field(default=0.15, ge=0, le=1)
    uncertainty_threshold: float = Field(default=0.3, ge=0, le=1)
    aggregation: Literal["weighted_mean", "minimum"] = "weighted_mean"
    scope: Literal["session", "step", "both"] = "session"
    parallel_workers: int = Field(default=4, ge=1, le=64, description="judge calls in flight")
    audit_prompts: bool = Field(
        default=False, description="keep each judge call's prompt and raw reply in the audit"
    )
    retry_threshold: float = Field(default=0.6, ge=0, le=1)
    success_threshold: float = Field(default=0.7, ge=0, le=1)
    reuse_validation_as_reward: bool = True
    reward_auto_lane: bool = False

    @model_validator(mode="before")
    @classmethod
    def _atlas_spellings(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for alias, name in _RIM_ALIASES.items():
            if alias in data:
                if name in data:
                    raise ValueError(f"give either {name} or {alias} (the same setting), not both")
                data[name] = data.pop(alias)
        if isinstance(data.get("active_judges"), list):
            data["active_judges"] = dict.fromkeys(data["active_judges"], True)
        return data

    @field_validator("temperatures")
    @classmethod
    def _temperatures(cls, value: list[float]) -> list[float]:
        if not value:
            raise ValueError("list at least one sampling temperature, e.g. [0.2, 0.5, 0.8]")
        outside = [t for t in value if not 0 <= t <= 2]
        if outside:
            raise ValueError(f"temperatures must lie between 0 and 2, got {outside}")
        return value

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> RimConfig:
        if self.retry_threshold > self.success_threshold:
            raise ValueError(
                f"retry_threshold ({self.retry_threshold}) must not exceed "
                f"success_threshold ({self.success_threshold})"
            )
        identifiers = [judge.identifier for judge in self.judges]
        repeated = sorted({name for name in identifiers if identifiers.count(name) > 1})
        if repeated:
            raise ValueError(f"judge identifiers must be unique, repeated: {repeated}")
        return self


class ProbeThresholds(_Strict):
    """Probe confidence needed for each lane; below ``coach`` the session escalates."""

    auto: float = Field(default=0.85, ge=0, le=1)
    paired: float = Field(default=0.65, ge=0, le=1)
    coach: float = Field(default=0.35, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> ProbeThresholds:
        if not self.auto >= self.paired >= self.coach:
            raise ValueError(
                f"thresholds must satisfy auto >= paired >= coach (got auto={self.auto}, "
                f"paired={self.paired}, coach={self.coach})"
            )
        return self


class ProbeConfig(_Strict):
    """The capability probe: an LLM that reads the dossier and the fingerprint's history."""

    llm: LLMParameters | None = None
    thresholds: ProbeThresholds = Field(default_factory=ProbeThresholds)
    fallback_mode: Lane = "paired"
    evidence_limit: int = Field(default=6, ge=1, le=32)
    timeout_seconds: float = Field(default=15.0, gt=0)
    mode_policy: Literal["thresholds", "stricter", "probe"] = Field(
        default="thresholds",
        description="the probe's own mode: ignored (thresholds decide), taken when it asks for "
        "more supervision than the thresholds (stricter), or taken when it names a lane (probe)",
    )
    low_confidence_lane: Lane = Field(
        default="escalate", description="the lane for a confidence below thresholds.coach"
    )
    atlas_compatible: bool = Field(
        default=False,
        description="Atlas's mapping: mode_policy probe, low_confidence_lane coach, and the "
        "probe never routes to escalate",
    )


class AdaptiveTeachingConfig(_Strict):
    """Lane choice, the triage dossier, certification and the probe's history window."""

    enabled: bool = Field(
        default=True, description="off: no certification and no probe, only overrides/fallback"
    )
    certify_first_run: bool = Field(
        default=False, description="the first run of an unseen fingerprint is a paired check"
    )
    mode_override: Lane | None = None
    triage_adapter: str | None = None
    default_tags: list[str] = Field(default_factory=list)
    learning_history_limit: int = Field(default=10, ge=1, le=200)
    probe: ProbeConfig = Field(default_factory=ProbeConfig)

    @field_validator("default_tags", mode="before")
    @classmethod
    def _tags_as_list(cls, value: Any) -> Any:
        if value is None:
            return []
        return [value] if isinstance(value, str) else value


CueType = Literal["regex", "keyword", "predicate"]
ScopeCategory = Literal["reinforcement", "differentiation"]
PLAYBOOK_SCHEMA_VERSION: Final = "playbook_entry.v1"


class LearningPrompts(_Strict):
    """Prompt overrides of the learning synthesizer."""

    synthesizer: str | None = Field(
        default=None, description="system prompt of the playbook synthesizer"
    )


class PlaybookSchemaConfig(_Strict):
    """What a ``playbook_entry.v1`` may contain: cue types, runtime handles, default scope."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    version: Literal["playbook_entry.v1"] = PLAYBOOK_SCHEMA_VERSION
    allowed_runtime_handles: list[str] = Field(
        default_factory=list, description="handles an action may name; empty: any"
    )
    runtime_handle_prefixes: list[str] = Field(
        default_factory=list, description="handle prefixes an action may use (e.g. 'mcp.')"
    )
    cue_types: list[CueType] = Field(default_factory=lambda: list(get_args(CueType)))
    default_scope_category: ScopeCategory = "differentiation"
    allow_missing_tool_mapping: bool = Field(
        default=True,
        validation_alias=AliasChoices("allow_missing_tool_mapping", "missing_tool_mapping"),
        description="an action without a runtime handle is still actionable",
    )


class RubricWeights(_Strict):
    """Weights of the four rubric scores; normalised by their sum."""

    actionability: float = Field(default=0.4, ge=0)
    generality: float = Field(default=0.3, ge=0)
    hookability: float = Field(default=0.2, ge=0)
    concision: float = Field(default=0.1, ge=0)

    @model_validator(mode="after")
    def _some_weight(self) -> RubricWeights:
        if self.actionability + self.generality + self.hookability + self.concision <= 0:
            raise ValueError("at least one rubric weight must be above 0")
        return self


class PlaybookGates(_Strict):
    """Hard checks an entry passes before the rubric scores it."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    enforce_actionability: bool = True
    enforce_cue: bool = True
    enforce_generality: bool = True
    max_text_length: int = Field(default=420, ge=20)
    allowed_proper_nouns: list[str] = Field(default_factory=list)
    banned_incident_tokens: list[str] = Field(default_factory=list)
    generality_overflow_margin: int = Field(
        default=0,
        ge=0,
        validation_alias=AliasChoices("generality_overflow_margin", "overflow_margin"),
        description="incident-specific tokens tolerated before the generality gate fails",
    )
    allow_length_overflow_margin: int = Field(
        default=20,
        ge=0,
        le=500,
        description="characters an entry may run over max_text_length before the length gate "
        "fails (Atlas's name and default)",
    )


class PruningConfig(_Strict):
    """Atlas's four pruning rules: too specific, harmful, neutral, no transfer."""

    min_sessions: int = Field(default=10, ge=1, description="sessions seen before any rule")
    min_cue_hit_rate: float = Field(default=0.05, ge=0, le=1)
    min_reward_delta: float = Field(default=0.01, ge=0, le=1)
    min_transfer_sessions: int = Field(default=20, ge=1)


class UsageTrackingConfig(_Strict):
    """Per entry and session: cue hits, adoption, rewards with and without the entry."""

    enabled: bool = True
    capture_examples: bool = False
    max_examples_per_entry: int = Field(default=5, ge=0, le=100)


class LearningConfig(_Strict):
    """Learning playbooks per learning key, and the session's learning notes.

    Learning acts when ``enabled`` and a learning model is available (``llm`` or
    ``models={"learning": ...}``): Atlas defaults to a hosted model that needs a key.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    enabled: bool = Field(default=True, description="keep a playbook once a model is available")
    update_enabled: bool = Field(default=True, description="off: a frozen playbook")
    provisional_acceptance: bool = Field(
        default=True, description="new entries are on trial until a session adopts them"
    )
    apply_to_prompts: bool = Field(default=True, description="inject the playbook into prompts")
    session_note_enabled: bool = True
    llm: LLMParameters | None = Field(default=None, description="the synthesizer's model")
    prompts: LearningPrompts = Field(default_factory=LearningPrompts)
    history_limit: int = Field(
        default=10, ge=1, le=200, description="recent sessions the synthesizer sees"
    )
    playbook_schema: PlaybookSchemaConfig = Field(
        default_factory=PlaybookSchemaConfig,
        alias="schema",
    )
    rubric_weights: RubricWeights = Field(default_factory=RubricWeights)
    gates: PlaybookGates = Field(default_factory=PlaybookGates)
    pruning_config: PruningConfig = Field(default_factory=PruningConfig)
    usage_tracking: UsageTrackingConfig = Field(default_factory=UsageTrackingConfig)

    @model_validator(mode="before")
    @classmethod
    def _empty_blocks(cls, data: Any) -> Any:
        # `gates:` with nothing under it is YAML null; it means "all defaults".
        if isinstance(data, dict):
            return {key: {} if value is None and key != "llm" else value
                    for key, value in data.items()}  # fmt: skip
        return data


class DriftConfig(_Strict):
    """Flag a session whose reward moves far from its fingerprint's recent rewards.

    As Atlas: |z| of the score and of the reward uncertainty, and their MAD (modified z)
    variants; ``two_sided: false`` flags only drops of the score.
    """

    enabled: bool = False
    window: int = Field(default=50, ge=2)
    z_threshold: float = Field(default=3.0, ge=0)
    mad_threshold: float | None = Field(
        default=3.5, ge=0, description="modified z (MAD) threshold; null: no MAD check"
    )
    two_sided: bool = True
    min_baseline: int = Field(default=5, ge=1)


def _approved_only() -> list[ReviewStatus]:
    return ["approved"]


class ReviewConfig(_Strict):
    """Review gate applied when sessions are exported.

    Off by default: ``atlas-graph export`` writes every succeeded session. With
    ``require_approval`` it writes only sessions whose review status is in
    ``default_export_statuses`` unless ``--review-status`` says otherwise.
    """

    require_approval: bool = False
    default_export_statuses: list[ReviewStatus] = Field(default_factory=_approved_only)
    auto_approve: bool = Field(
        default=False,
        description="finished sessions start approved instead of pending (a drift alert still "
        "leaves them pending); on when the file says require_approval: false, as in Atlas",
    )

    @model_validator(mode="before")
    @classmethod
    def _atlas_auto_approval(cls, data: Any) -> Any:
        # Atlas auto-approves when a config turns approval off; saying nothing keeps sessions
        # pending, which is atlas-graph's default.
        if isinstance(data, dict) and data.get("require_approval") is False:
            return {"auto_approve": True, **data}
        return data


class RuntimeSafetyConfig(_Strict):
    """Guardrails: reward drift and the export review gate."""

    drift: DriftConfig = Field(default_factory=DriftConfig)
    review: ReviewConfig = Field(default_factory=ReviewConfig)


class PromptRewriteConfig(_Strict):
    """Rewrite the agent's system prompt once into planner, executor and teacher personas."""

    llm: LLMParameters
    max_tokens: int = Field(default=1024, ge=64)
    temperature: float = Field(default=0.1, ge=0, le=2)


class StorageConfig(_Strict):
    """Where checkpoints and the session ledger live for ``run()`` and the CLI.

    ``backend`` defaults to ``postgres`` when a ``database_url`` is given (Atlas configs name
    only the URL), else to the embedded SQLite file at ``path``. Atlas's
    ``min_connections``/``max_connections`` load as ``min_size``/``max_size``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    backend: Literal["memory", "sqlite", "postgres"] = "sqlite"
    path: str = ".atlas_graph/atlas.sqlite"
    durability: Literal["sync", "async", "exit"] = "sync"
    database_url: str | None = Field(
        default=None, repr=False,
        description="PostgreSQL DSN; default: the ATLAS_GRAPH_DATABASE_URL variable",
    )  # fmt: skip
    min_size: int = Field(
        default=1, ge=0, validation_alias=AliasChoices("min_size", "min_connections")
    )
    max_size: int = Field(
        default=10, ge=1, validation_alias=AliasChoices("max_size", "max_connections")
    )
    statement_timeout_seconds: float | None = Field(default=None, gt=0)
    pool_timeout_seconds: float = Field(
        default=30.0, gt=0,
        description="how long a query waits for a pool connection (a database outage longer "
        "than this stops the session with exit 3; it resumes once the database is back)",
    )  # fmt: skip
    apply_schema_on_connect: bool = Field(
        default=True, description="create or migrate the saver and store tables when opening"
    )

    @model_validator(mode="before")
    @classmethod
    def _url_means_postgres(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("database_url") and "backend" not in data:
            return {**data, "backend": "postgres"}
        return data

    @model_validator(mode="after")
    def _pool_sizes_ordered(self) -> StorageConfig:
        if self.min_size > self.max_size:
            raise ValueError(
                f"min_size ({self.min_size}) must not exceed max_size ({self.max_size})"
            )
        return self


class AtlasConfig(_Strict):
    """The whole configuration of one supervised agent."""

    agent: AgentConfig | None = None
    student: StudentConfig = Field(default_factory=StudentConfig)
    teacher: TeacherConfig = Field(default_factory=TeacherConfig)
    orchestration: OrchestrationConfig = Field(default_factory=OrchestrationConfig)
    rim: RimConfig = Field(default_factory=RimConfig)
    adaptive_teaching: AdaptiveTeachingConfig = Field(default_factory=AdaptiveTeachingConfig)
    learning: LearningConfig = Field(default_factory=LearningConfig)
    runtime_safety: RuntimeSafetyConfig = Field(default_factory=RuntimeSafetyConfig)
    prompt_rewrite: PromptRewriteConfig | None = None
    storage: StorageConfig = Field(default_factory=StorageConfig)
    pricing: dict[str, ModelPrice] = Field(
        default_factory=dict,
        description="prices by model id, over the built-in table (atlas_graph.pricing)",
    )
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="defaults merged under every session's metadata"
    )

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, data: Any) -> Any:
        # `teacher:` with nothing under it is YAML null; it means "all defaults".
        if isinstance(data, dict):
            return {
                key: {} if value is None and key not in ("agent", "prompt_rewrite") else value
                for key, value in data.items()
            }
        return data


# Atlas keys that atlas-graph knows but does not implement yet: a precise error beats a
# generic "unknown field" for someone bringing an Atlas config.
_NOT_YET_SUPPORTED = {
    # reward system
    # adaptive teaching
    "adaptive_teaching.reward": "adaptive reward hooks",
    # persistence
}

_AGENT_MODELS: dict[str, type[BaseModel]] = {
    "python": PythonAgentConfig,
    "openai": ChatAgentConfig,
    "litellm": ChatAgentConfig,
    "http_api": HttpAgentConfig,
    "runnable": RunnableAgentConfig,
}
_AGENT_TAGS = tuple(_AGENT_MODELS)


MAX_CONFIG_BYTES = 1024 * 1024
"""A config file larger than this is refused before it is parsed."""
MAX_CONFIG_VALUES = 100_000
"""A config that expands (through YAML aliases) to more values than this is refused."""
MAX_CONFIG_DEPTH = 64
"""A config nested deeper than this is refused."""
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses duplicate keys instead of keeping the last one silently.

    Keys are scalars (a list or mapping as a key is refused); merge keys (``<<: *base``) work,
    and the keys written out beside them override the merged ones, as YAML says.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise yaml.constructor.ConstructorError(
                    None, None, "a key must be plain text, not a list or mapping",
                    key_node.start_mark,
                )  # fmt: skip
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key}'", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _check_size(data: Any, source: str) -> None:
    """Refuse a tree that nests too deeply, refers to itself, or expands past the limit.

    Aliases make the loaded tree share nodes, so a small file can stand for billions of
    values (billion laughs): sizes are counted once per shared node, in linear time.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(value: Any, depth: int) -> int:
        if not isinstance(value, dict | list):
            return 1
        if depth > MAX_CONFIG_DEPTH:
            raise ConfigError(f"nested deeper than {MAX_CONFIG_DEPTH} levels", source=source)
        known = sizes.get(id(value))
        if known is not None:
            return known
        if id(value) in open_nodes:
            raise ConfigError("a YAML alias refers to itself (recursive anchor)", source=source)
        open_nodes.add(id(value))
        items = value.values() if isinstance(value, dict) else value
        total = 1 + sum(size(item, depth + 1) for item in items)
        open_nodes.discard(id(value))
        if total > MAX_CONFIG_VALUES:
            raise ConfigError(
                f"expands to more than {MAX_CONFIG_VALUES} values (YAML aliases)", source=source
            )
        sizes[id(value)] = total
        return total

    size(data, 0)


_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _interpolate(value: Any, path: str, environ: Mapping[str, str]) -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string of the tree.

    Call after ``_check_size``: the copy it makes is as large as the expanded tree.
    """
    if isinstance(value, dict):
        return {
            key: _interpolate(item, f"{path}.{key}" if path else str(key), environ)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_interpolate(item, f"{path}[{index}]", environ) for index, item in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(f"environment variable {name} is not set", key=path)

    return _ENV_PATTERN.sub(substitute, value)


def _location(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for index, item in enumerate(loc):
        if item == "[key]":
            continue  # pydantic's marker for "the key itself" adds nothing a person needs
        if index == 1 and loc[0] == "agent" and item in _AGENT_TAGS:
            continue  # the discriminator tag pydantic inserts is not a key in the file
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(f".{item}" if parts else str(item))
    return "".join(parts) or "(top level)"


def _describe(error: Mapping[str, Any], model: type[BaseModel]) -> str:
    key = _location(tuple(error["loc"]))
    kind = error["type"]
    if kind == "extra_forbidden":
        plain_key = re.sub(r"\[\d+\]", "", key)
        feature = _NOT_YET_SUPPORTED.get(plain_key) or _NOT_YET_SUPPORTED.get(
            plain_key.split(".")[0]
        )
        if feature:
            return f"{key}: not supported by atlas-graph yet ({feature}), remove it"
        return f"{key}: unknown field, expected one of {_allowed_fields(model, error['loc'])}"
    if kind == "missing":
        return f"{key}: required field is missing"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        context = error.get("ctx", {})
        field = str(context.get("discriminator", "type")).strip("'")
        expected = ", ".join(f"'{tag}'" for tag in _AGENT_TAGS)
        tag = context.get("tag")
        if tag is None:
            return f"{key}.{field}: required field is missing (one of {expected})"
        return f"{key}.{field}: '{tag}' is not supported, expected one of {expected}"
    message = str(error["msg"]).removeprefix("Value error, ")
    value = error.get("input")
    if isinstance(value, dict | list):
        return f"{key}: {message}"
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    return f"{key}: {message} (got {shown})"


def _allowed_fields(model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    """Field names of the model that holds the unknown key, for the error message."""
    current: Any = model
    for item in loc[:-1]:
        if isinstance(item, int) or not (
            isinstance(current, type) and issubclass(current, BaseModel)
        ):
            continue
        aliases = {field.alias: name for name, field in current.model_fields.items()}
        item = aliases.get(item, item)
        if item not in current.model_fields:
            if item in _AGENT_MODELS:
                current = _AGENT_MODELS[item]
            continue
        annotation = current.model_fields[item].annotation
        current = _model_in(annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return ", ".join(field.alias or name for name, field in current.model_fields.items())
    return "(see the config reference)"


def _model_in(annotation: Any) -> Any:
    """The pydantic model inside an annotation such as ``X | None`` or ``list[X]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in getattr(annotation, "__args__", ()):
        found = _model_in(argument)
        if found is not None:
            return found
    return None


def parse_config(
    data: Mapping[str, Any], *, source: str = "<config>", environ: Mapping[str, str] | None = None
) -> AtlasConfig:
    """Validate a config mapping; errors become one-line ``ConfigError``s naming ``source``."""
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"expected a mapping at the top level, got {type(data).__name__}", source=source
        )
    try:
        _check_size(data, source)
        resolved = _interpolate(dict(data), "", os.environ if environ is None else environ)
    except ConfigError as error:
        raise ConfigError(error.problem, source=source, key=error.key) from None
    try:
        return AtlasConfig.model_validate(resolved)
    except ValidationError as error:
        problems = [_describe(item, AtlasConfig) for item in error.errors()]
        raise ConfigError("; ".join(problems), source=source) from None


def load_config(
    source: str | Path | Mapping[str, Any] | AtlasConfig,
    *,
    environ: Mapping[str, str] | None = None,
) -> AtlasConfig:
    """Load a config from a YAML file, a mapping, or pass an ``AtlasConfig`` through.

    Args:
        source: Path to YAML, a dict in the same layout, or a ready config.
        environ: Variables for ``${VAR}`` interpolation (default: the process environment).

    Raises:
        ConfigError: One line naming the file, the key path and what was expected.
    """
    if isinstance(source, AtlasConfig):
        return source
    if isinstance(source, Mapping):
        return parse_config(source, environ=environ)
    path = Path(source)
    text = _read_text(path)
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except RecursionError:
        raise ConfigError("nested too deeply to read", source=str(path)) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise ConfigError(f"invalid YAML{where}: {problem}", source=str(path)) from None
    if data is None:
        data = {}
    return parse_config(data, source=str(path), environ=environ)


def _read_text(path: Path) -> str:
    """The file's text: a regular file of at most ``MAX_CONFIG_BYTES`` in UTF-8.

    A FIFO or a device (``/dev/zero``) would block or never end, so only regular files are
    read, and never more than the limit.
    """
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer (regular files ignore it)
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(descriptor, "rb") as file:
            if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                raise ConfigError("not a regular file", source=str(path))
            raw = file.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError("file not found", source=str(path)) from None
    except OSError as error:
        raise ConfigError(f"cannot read: {error.strerror}", source=str(path)) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"larger than {MAX_CONFIG_BYTES} bytes", source=str(path))
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ConfigError("UTF-16 text; save the file as UTF-8", source=str(path))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8 text", source=str(path)) from None
