"""What the nodes of one graph share: config, lane table, agent, models and callables.

One ``Services`` object is built per ``create_atlas_graph`` call and closed over by its nodes,
so two graphs in one process never share anything. ``AtlasContext`` lets a single run swap
the agent or a role's model (LangGraph's runtime context), which is how notebooks and tests
reuse one compiled graph with different models.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, assert_never

from langchain_core.language_models import BaseChatModel
from langgraph.runtime import Runtime
from pydantic.json_schema import SkipJsonSchema

from atlas_graph.agents import Agent, AgentLike, agent_from_config, as_agent
from atlas_graph.agents.tools import Toolbox, ToolLike
from atlas_graph.callables import load_object
from atlas_graph.config import AtlasConfig, ChatAgentConfig, LLMParameters
from atlas_graph.lanes import Lane, LanePolicy, default_policies
from atlas_graph.models import ModelConfigError, Role, chat_model_from_params, with_max_tokens
from atlas_graph.pricing import DEFAULT_PRICES, Budget, Ledger, Price
from atlas_graph.routes import Routes
from atlas_graph.structured import SchemaT, Structured, resolve_method
from atlas_graph.telemetry.events import Actor, EventType, emit

Node = Callable[..., Awaitable[Any]]
"""A graph node function, built by a ``make_*_node(services)`` factory."""


@dataclass(frozen=True)
class AtlasContext:
    """Per-run dependencies (LangGraph runtime context); never checkpointed.

    Attributes:
        models: Chat models by role (``student``, ``teacher``, ``judge``, ``arbiter``) for
            this run only.
        agent: The student's agent for this run only.

    Both are Python objects, so they have no JSON Schema: LangGraph Server shows an empty
    context form instead of failing to draw one.
    """

    models: SkipJsonSchema[Mapping[str, BaseChatModel] | None] = None
    agent: SkipJsonSchema[Any] = None

    def __post_init__(self) -> None:
        # A context sent as JSON (an HTTP client of langgraph dev) holds names, not objects:
        # say so at the start of the run instead of failing inside a node.
        hint = "the run context takes Python objects; over HTTP, configure them in the config"
        for role, model in (self.models or {}).items():
            if not isinstance(model, BaseChatModel):
                raise TypeError(
                    f"context models[{role!r}] is a {type(model).__name__}, not a chat model: "
                    f"{hint}"
                )
        agent = self.agent
        if agent is not None and not (callable(agent) or callable(getattr(agent, "ainvoke", None))):
            raise TypeError(
                f"context agent is a {type(agent).__name__}, not an agent, chat model or "
                f"function: {hint}"
            )


def lane_policies(config: AtlasConfig) -> dict[Lane, LanePolicy]:
    """The lane table with the config's overrides applied."""
    policies = default_policies(
        max_retries=config.orchestration.max_retries,
        reward_auto=config.rim.reward_auto_lane,
    )
    for lane, override in config.orchestration.lanes.items():
        policies[lane] = replace(policies[lane], **override.changes())
    return policies


class Services:
    """Resolved dependencies of one graph; model clients are built on first use."""

    def __init__(
        self,
        config: AtlasConfig,
        *,
        models: Mapping[str, BaseChatModel] | None = None,
        agent: AgentLike | None = None,
        tools: Sequence[ToolLike] = (),
    ) -> None:
        self.config = config
        self.toolbox = Toolbox(config.agent.tools if config.agent else (), tools=tools)
        """The student's tools: ``agent.tools`` from config and the ``tools`` given here."""
        self.policies: dict[Lane, LanePolicy] = lane_policies(config)
        self._models: dict[str, BaseChatModel] = dict(models or {})
        self._built: dict[tuple[str, int | None], BaseChatModel] = {}  # by role/params, cap
        self._structured: dict[tuple[str, str, int | None], Structured[Any]] = {}
        self._fallbacks: set[str] = set()  # models whose forced tool calls were ignored
        self._agent: Agent | None = self._resolve_agent(agent)
        teacher = config.teacher
        self.validator: Callable[..., Any] | None = (
            load_object(teacher.validator) if teacher.validator else None
        )
        self.plan_reviewer: Callable[..., Any] | None = (
            load_object(teacher.plan_reviewer) if teacher.plan_reviewer else None
        )
        self.ledger = Ledger(self._role_models(), _prices(config))
        limits = config.orchestration.budget
        self.budget: Budget | None = (
            Budget(self.ledger, limits.max_tokens, limits.max_cost) if limits else None
        )
        self.routes = Routes(
            self.policies,
            learns=self._learns(),
            retry_threshold=config.rim.retry_threshold,
            max_parallel_steps=config.orchestration.max_parallel_steps,
            budget=self.budget,
        )

    def _role_models(self) -> dict[str, str | None]:
        """The model id of each role, for the cost ledger: passed models first, then config."""
        roles: tuple[Role, ...] = ("teacher", "judge", "arbiter", "probe", "learning")
        ids: dict[str, str | None] = {}
        for name in roles:
            params = self._params(name)
            ids[name] = params.model if params is not None else None
        agent = self.config.agent
        ids["student"] = agent.llm.model if isinstance(agent, ChatAgentConfig) else None
        for role, model in self._models.items():
            model_id = getattr(model, "model_name", None) or getattr(model, "model", None)
            if isinstance(model_id, str):
                ids[role] = model_id
        return ids

    def _resolve_agent(self, agent: Any) -> Agent | None:
        tool_choice = self.config.student.tool_choice
        if agent is not None:
            return as_agent(agent, tool_choice=tool_choice)
        if self.config.agent is not None:
            return agent_from_config(self.config.agent, self.config.student)
        if "student" in self._models:
            return as_agent(self._models["student"], tool_choice=tool_choice)
        return None

    def emit(
        self,
        runtime: Runtime[AtlasContext] | None,
        event: EventType,
        *,
        session_id: str,
        actor: Actor,
        intermediate: bool = False,
        **fields: Any,
    ) -> None:
        """Emit an event; per-attempt ones only when ``emit_intermediate_steps`` is on."""
        if intermediate and not self.config.orchestration.emit_intermediate_steps:
            return
        writer = runtime.stream_writer if runtime is not None else None
        emit(writer, event, session_id=session_id, actor=actor, **fields)

    def policy(self, lane: Lane) -> LanePolicy:
        """The lane table row of ``lane``."""
        return self.policies[lane]

    def _learns(self) -> bool:
        """Whether the learn node has work: probe history, certification, drift or playbook.

        Sessions skip the node (and its superstep) when none of these is on.
        """
        config = self.config
        adaptive = config.adaptive_teaching
        probing = adaptive.probe.llm is not None or "probe" in self._models
        return (
            (adaptive.enabled and (probing or adaptive.certify_first_run))
            or self.learns_playbook()
            or config.runtime_safety.drift.enabled
        )

    def learns_playbook(self, runtime: Runtime[AtlasContext] | None = None) -> bool:
        """Whether sessions keep a learning playbook: enabled and a learning model available.

        Atlas defaults ``learning.llm`` to a hosted model; here learning turns on as soon as
        a model is configured or passed (``models={"learning": ...}``).
        """
        return self.config.learning.enabled and self.has_model("learning", runtime)

    def agent(self, runtime: Runtime[AtlasContext] | None) -> Agent:
        """The student's agent for this run.

        Raises:
            ModelConfigError: no agent anywhere (argument, config, context or student model).
        """
        tool_choice = self.config.student.tool_choice
        context = runtime.context if runtime is not None else None
        if context is not None and context.agent is not None:
            return as_agent(context.agent, tool_choice=tool_choice)
        student = _run_model(runtime, "student")
        if student is not None:
            return as_agent(student, tool_choice=tool_choice)
        if self._agent is None:
            raise ModelConfigError(
                "no student agent: set `agent` in the config or pass agent= to the graph"
            )
        return self._agent

    def _params(self, role: Role) -> LLMParameters | None:
        match role:
            case "student":  # the student's model is its agent's, or one passed in models=
                return None
            case "teacher":
                return self.config.teacher.llm
            case "judge":
                return self.config.rim.small_model
            case "arbiter":
                return self.config.rim.large_model
            case "probe":
                return self.config.adaptive_teaching.probe.llm
            case "learning":
                return self.config.learning.llm
            case "prompt_rewrite":
                rewrite = self.config.prompt_rewrite
                if rewrite is None:
                    return None
                return rewrite.llm.model_copy(update={"temperature": rewrite.temperature})
            case _:
                assert_never(role)

    def has_model(self, role: Role, runtime: Runtime[AtlasContext] | None = None) -> bool:
        """Whether ``role`` has a chat model from context, arguments or config."""
        if _run_model(runtime, role) is not None:
            return True
        return role in self._models or self._params(role) is not None

    def model(
        self,
        role: Role,
        runtime: Runtime[AtlasContext] | None = None,
        *,
        max_tokens: int | None = None,
        params: LLMParameters | None = None,
    ) -> BaseChatModel:
        """The chat model of ``role``: run context, then graph arguments, then config."""
        override = _run_model(runtime, role)
        if override is not None:
            return with_max_tokens(override, max_tokens)
        key = (_cache_key(role, params), max_tokens)
        if key not in self._built:
            if role in self._models and params is None:
                base = self._models[role]
            else:
                source = params or self._params(role)
                if source is None:
                    raise ModelConfigError(
                        f"no {role} model: configure it or pass models={{'{role}': ...}}"
                    )
                base = chat_model_from_params(source, role=role)
                base.metadata = {**(base.metadata or {}), "role": role}  # names its LLM runs
            self._built[key] = with_max_tokens(base, max_tokens)
        return self._built[key]

    def structured(
        self,
        role: Role,
        schema: type[SchemaT],
        runtime: Runtime[AtlasContext] | None = None,
        *,
        max_tokens: int | None = None,
        params: LLMParameters | None = None,
    ) -> Structured[SchemaT]:
        """The role's model asked for ``schema``; cached per graph unless the run overrides it.

        The method comes from the model's ``structured_output`` setting; a whole call is
        bounded by its ``timeout_seconds`` for each transport attempt.
        """
        source = params or self._params(role)
        setting = source.structured_output if source is not None else "auto"
        deadline = source.timeout_seconds * (source.retries + 1) if source is not None else None
        if _run_model(runtime, role) is not None:
            model = self.model(role, runtime, max_tokens=max_tokens)
            return Structured(
                model, schema, resolve_method(setting, model), role, deadline, self._fallbacks
            )
        key = (_cache_key(role, params), schema.__name__, max_tokens)
        if key not in self._structured:
            model = self.model(role, max_tokens=max_tokens, params=params)
            self._structured[key] = Structured(
                model, schema, resolve_method(setting, model), role, deadline, self._fallbacks
            )
        return self._structured[key]


def _prices(config: AtlasConfig) -> dict[str, Price]:
    """The built-in price table with the config's ``pricing`` over it."""
    prices = dict(DEFAULT_PRICES)
    for model, price in config.pricing.items():
        prices[model] = Price(price.input, price.output)
    return prices


def _run_model(runtime: Runtime[AtlasContext] | None, role: Role) -> BaseChatModel | None:
    """The model this run's context sets for ``role``, if any."""
    context = runtime.context if runtime is not None else None
    models = context.models if context is not None else None
    return models.get(role) if models else None


def _cache_key(role: Role, params: LLMParameters | None) -> str:
    """Models built from explicit parameters (a judge's own ``llm``) are cached apart."""
    return role if params is None else f"{role}:{params.model_dump_json()}"
