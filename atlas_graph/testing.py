"""Scripted, hermetic fakes for testing graphs without a real LLM provider.

These fakes exist so tests, notebooks and benchmarks can drive ``atlas_graph`` (and user graphs)
deterministically: every answer is scripted up front or computed by a callback, nothing touches
the network, and all state lives on the instance so parallel tests never interfere.

Example:
    >>> model = ScriptedChatModel(responses=["hello", scripted_json(answer=42)])
    >>> model.invoke("hi").content
    'hello'
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.exceptions import OutputParserException
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable, RunnableLambda
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    PydanticUserError,
    TypeAdapter,
    ValidationError,
)
from typing_extensions import is_typeddict

from atlas_graph.errors import ScriptExhaustedError

__all__ = [
    "ScriptExhaustedError",
    "ScriptedAgent",
    "ScriptedChatModel",
    "scripted_json",
]

# Private kwarg used to tag structured-output calls so the call record can show the schema name.
_SCHEMA_KWARG = "_scripted_schema"
_FENCE_RE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)
_MISSING = object()


def scripted_json(**fields: Any) -> str:
    """Return ``fields`` as JSON text, a shorthand for scripting structured-output replies.

    Args:
        **fields: Keys and values of the JSON object.

    Returns:
        The JSON-encoded object.
    """
    return json.dumps(fields)


# --------------------------------------------------------------------------------------------
# ScriptedChatModel
# --------------------------------------------------------------------------------------------


class ScriptedChatModel(BaseChatModel):
    """A chat model that replies from a script, so graphs can be tested without a provider.

    Each response item may be a ``str`` (message content), an ``AIMessage`` (returned as is,
    usage filled in if missing), a ``dict`` or pydantic model (sent as JSON text so structured
    output can parse it), a ``BaseException`` (raised, to simulate provider failures) or a
    callable ``(messages) -> item``. A ``responder`` callback, when set, replaces the script;
    use it where call order is not deterministic (concurrency, benchmarks).

    Attributes:
        responses: Items returned in order, one per call.
        responder: Callback computing the item from the messages; takes priority over
            ``responses``.
        latency: Seconds to wait per call (non-blocking on the async path); 0 skips sleeping.
        name: Name used in error messages and tracing.
        model_name: Reported model name (``response_metadata`` and identifying params).
        usage_per_call: ``(input_tokens, output_tokens)`` reported on every reply.
        repeat_last: Keep returning the last item once the script runs out instead of raising.
    """

    model_config = ConfigDict(extra="forbid")

    responses: list[Any] = Field(default_factory=list)
    responder: Callable[[list[BaseMessage]], Any] | None = None
    latency: float = 0.0
    name: str = "scripted"
    model_name: str = "scripted"
    usage_per_call: tuple[int, int] = (10, 5)
    repeat_last: bool = False

    _calls: list[dict[str, Any]] = PrivateAttr(default_factory=list)
    _served: int = PrivateAttr(default=0)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    # -- public inspection ------------------------------------------------------------------

    @property
    def calls(self) -> list[dict[str, Any]]:
        """Live record of every call, so tests can assert on prompts, tools and schemas.

        Each entry is ``{"messages", "tools", "tool_choice", "schema", "kwargs"}``. Entries are
        appended before any latency sleep, so in-flight calls are visible.
        """
        return self._calls

    @property
    def call_count(self) -> int:
        """Number of calls received so far (including ones that raised)."""
        return len(self._calls)

    def assert_complete(self) -> None:
        """Check that every scripted response was served: the code made the calls it should.

        With ``repeat_last`` the script is complete once its last item was served once. A
        ``responder`` replaces the script, so scripted ``responses`` next to one are unused.

        Raises:
            AssertionError: Responses are left; the message names the model and how many.
        """
        with self._lock:
            served = 0 if self.responder is not None else min(self._served, len(self.responses))
            calls = len(self._calls)
        left = len(self.responses) - served
        if left:
            unused = _preview(self.responses[served])
            raise AssertionError(
                f"ScriptedChatModel {self.name!r} has {left} of {len(self.responses)} scripted "
                f"response(s) unused after {calls} call(s); the next one is {unused}"
            )

    # -- BaseChatModel hooks ----------------------------------------------------------------

    @property
    def _llm_type(self) -> str:
        return "scripted-chat-model"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model_name": self.model_name,
            "latency": self.latency,
            "usage_per_call": self.usage_per_call,
            "repeat_last": self.repeat_last,
            "scripted_responses": len(self.responses),
            "has_responder": self.responder is not None,
        }

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        item = self._record_and_take(messages, stop, kwargs)
        if self.latency > 0:
            time.sleep(self.latency)
        resolved = self._resolve(item, messages)
        if inspect.isawaitable(resolved):
            _discard_awaitable(resolved)
            msg = (
                f"ScriptedChatModel {self.name!r}: an async responder or response callable "
                "can only be used with the async API (ainvoke/abatch/astream)."
            )
            raise TypeError(msg)
        return self._to_result(resolved)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        item = self._record_and_take(messages, stop, kwargs)
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        resolved = self._resolve(item, messages)
        while inspect.isawaitable(resolved):
            resolved = self._resolve(await resolved, messages)
        return self._to_result(resolved)

    # -- tools and structured output ---------------------------------------------------------

    def bind_tools(
        self,
        tools: Sequence[Mapping[str, Any] | type | Callable[..., Any] | Any],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools like a real provider would, so the call record shows which were offered.

        The scripted replies are not affected: script an ``AIMessage`` with ``tool_calls`` to
        simulate the model calling a tool.

        Args:
            tools: Tools in any form ``convert_to_openai_tool`` accepts.
            tool_choice: Recorded as given (e.g. ``"auto"``, ``"any"``, a tool name).
            **kwargs: Extra kwargs bound to every call (recorded under ``"kwargs"``).

        Returns:
            A runnable that calls this model with the tools bound.
        """
        formatted = [convert_to_openai_tool(tool) for tool in tools]
        return self.bind(tools=formatted, tool_choice=tool_choice, **kwargs)

    def with_structured_output(
        self,
        schema: Mapping[str, Any] | type,
        *,
        include_raw: bool = False,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, Any]:
        """Parse scripted replies into ``schema``, mirroring the real provider contract.

        JSON is taken from the first tool call's ``args`` if present, otherwise from the message
        text: plain JSON, a fenced ```` ```json ```` block, or the first ``{...}`` object in
        prose.

        Args:
            schema: A pydantic model class (parsed to an instance), a ``TypedDict`` class or a
                JSON-schema dict (parsed to a ``dict``).
            include_raw: Return ``{"raw", "parsed", "parsing_error"}`` and never raise on bad
                output, like ``ChatOpenAI``.
            **kwargs: Accepted for signature compatibility (``method``, ``strict``) and ignored.

        Returns:
            A runnable producing the parsed object (or the include_raw dict).

        Raises:
            OutputParserException: When invoked with ``include_raw=False`` and the reply cannot
                be parsed or validated.
        """
        kwargs.pop("method", None)
        kwargs.pop("strict", None)
        if kwargs:
            msg = f"Received unsupported arguments {kwargs}"
            raise ValueError(msg)
        schema_name = _schema_name(schema)
        bound = self.bind(**{_SCHEMA_KWARG: schema_name})

        def _parse(message: AIMessage) -> Any:
            return _parse_structured(message, schema)

        def _parse_with_raw(message: AIMessage) -> dict[str, Any]:
            try:
                parsed = _parse_structured(message, schema)
            except OutputParserException as exc:
                return {"raw": message, "parsed": None, "parsing_error": exc}
            return {"raw": message, "parsed": parsed, "parsing_error": None}

        parser = _parse_with_raw if include_raw else _parse
        return bound | RunnableLambda(parser, name=f"parse_{schema_name}")

    # -- internals -------------------------------------------------------------------------

    def _record_and_take(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> Any:
        """Record the call and claim the next script item atomically (safe under concurrency)."""
        extra = dict(kwargs)
        tools = extra.pop("tools", None) or []
        tool_choice = extra.pop("tool_choice", None)
        schema = extra.pop(_SCHEMA_KWARG, None)
        if stop is not None:
            extra["stop"] = stop
        record = {
            "messages": list(messages),
            "tools": [_tool_name(tool) for tool in tools],
            "tool_choice": tool_choice,
            "schema": schema,
            "kwargs": extra,
        }
        with self._lock:
            self._calls.append(record)
            if self.responder is not None:
                self._served += 1
                return self.responder
            if self._served < len(self.responses):
                item = self.responses[self._served]
                self._served += 1
                return item
            if self.repeat_last and self.responses:
                self._served += 1
                return self.responses[-1]
            served = self._served
        raise ScriptExhaustedError(self.name, served)

    def _resolve(self, item: Any, messages: list[BaseMessage]) -> Any:
        """Turn a script item into an ``AIMessage`` (or an awaitable), raising scripted errors."""
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, type) and issubclass(item, BaseException):
            raise item()
        if callable(item) and not isinstance(item, (BaseMessage, BaseModel)):
            item = item(list(messages))
            if inspect.isawaitable(item):
                return item
            if isinstance(item, BaseException):
                raise item
        if isinstance(item, AIMessage):
            return item
        if isinstance(item, str):
            return AIMessage(content=item)
        if isinstance(item, BaseModel):
            return AIMessage(content=item.model_dump_json())
        if isinstance(item, Mapping):
            return AIMessage(content=json.dumps(dict(item), default=str))
        msg = (
            f"ScriptedChatModel {self.name!r}: unsupported response item of type "
            f"{type(item).__name__}; use str, AIMessage, dict, pydantic model, exception or "
            "callable."
        )
        raise TypeError(msg)

    def _to_result(self, message: AIMessage) -> ChatResult:
        """Copy the message (scripts may be reused) and attach usage and model metadata."""
        prompt_tokens, completion_tokens = self.usage_per_call
        usage = {
            "input_tokens": prompt_tokens,
            "output_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        update: dict[str, Any] = {}
        if message.usage_metadata is None:
            update["usage_metadata"] = usage
        if "model_name" not in message.response_metadata:
            update["response_metadata"] = {
                **message.response_metadata,
                "model_name": self.model_name,
            }
        out = message.model_copy(update=update)
        return ChatResult(
            generations=[ChatGeneration(message=out)],
            llm_output={
                "model_name": self.model_name,
                "token_usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
        )


def _preview(item: Any, width: int = 60) -> str:
    """A short repr of a script item for an error message."""
    text = repr(item)
    return text if len(text) <= width else f"{text[: width - 3]}..."


def _discard_awaitable(value: Any) -> None:
    """Close an unawaited coroutine so it does not trigger a 'never awaited' warning."""
    close = getattr(value, "close", None)
    if callable(close):
        close()


def _tool_name(tool: Any) -> str:
    """Best-effort name of a bound tool (OpenAI format or plain dict)."""
    if isinstance(tool, Mapping):
        function = tool.get("function")
        if isinstance(function, Mapping) and "name" in function:
            return str(function["name"])
        if "name" in tool:
            return str(tool["name"])
    return str(getattr(tool, "name", tool))


def _schema_name(schema: Mapping[str, Any] | type) -> str:
    """Human-readable name of a structured-output schema, for the call record."""
    if isinstance(schema, type):
        return schema.__name__
    if isinstance(schema, Mapping):
        function = schema.get("function")
        if isinstance(function, Mapping) and "name" in function:
            return str(function["name"])
        for key in ("title", "name"):
            if isinstance(schema.get(key), str):
                return schema[key]
        return "schema"
    msg = f"Unsupported structured-output schema: {schema!r}"
    raise TypeError(msg)


def _extract_json(message: AIMessage) -> Any:
    """Find the JSON payload in a reply the way lenient production parsers do."""
    if message.tool_calls:
        return message.tool_calls[0]["args"]
    text = message.text.strip()
    if not text:
        raise OutputParserException("Empty model output; expected JSON.", llm_output=text)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    for block in _FENCE_RE.findall(text):
        try:
            return json.loads(block.strip())
        except json.JSONDecodeError:
            continue
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            obj, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        return obj
    raise OutputParserException(f"No JSON object found in model output: {text!r}", llm_output=text)


def _parse_structured(message: AIMessage, schema: Mapping[str, Any] | type) -> Any:
    """Extract and validate the structured payload, raising ``OutputParserException``."""
    data = _extract_json(message)
    raw_text = message.text
    try:
        if isinstance(schema, type) and issubclass(schema, BaseModel):
            return schema.model_validate(data)
        if isinstance(schema, type) and is_typeddict(schema):
            return _validate_typeddict(schema, data, raw_text)
    except ValidationError as exc:
        assert isinstance(schema, type)  # only the two schema classes above validate
        raise OutputParserException(
            f"Model output does not match {schema.__name__}: {exc}", llm_output=raw_text
        ) from exc
    if not isinstance(data, dict):
        raise OutputParserException(
            f"Expected a JSON object, got {type(data).__name__}.", llm_output=raw_text
        )
    if isinstance(schema, Mapping):
        missing = [key for key in _required_keys(schema) if key not in data]
        if missing:
            raise OutputParserException(
                f"Model output is missing required keys {missing}.", llm_output=raw_text
            )
    return data


def _validate_typeddict(schema: type, data: Any, raw_text: str) -> dict[str, Any]:
    """Validate against a TypedDict; plain ``typing.TypedDict`` on 3.11 gets a key check only."""
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(schema)
    except PydanticUserError:
        # pydantic cannot build validators for ``typing.TypedDict`` before Python 3.12.
        if not isinstance(data, dict):
            raise OutputParserException(
                f"Expected a JSON object, got {type(data).__name__}.", llm_output=raw_text
            ) from None
        required = sorted(getattr(schema, "__required_keys__", frozenset()))
        missing = [key for key in required if key not in data]
        if missing:
            raise OutputParserException(
                f"Model output does not match {schema.__name__}: missing keys {missing}.",
                llm_output=raw_text,
            ) from None
        return data
    return dict(adapter.validate_python(data))


def _required_keys(schema: Mapping[str, Any]) -> list[str]:
    """Required top-level keys of a JSON schema (plain or OpenAI-tool wrapped)."""
    function = schema.get("function")
    if isinstance(function, Mapping):
        schema = function.get("parameters") or {}
    elif "parameters" in schema and isinstance(schema["parameters"], Mapping):
        schema = schema["parameters"]
    required = schema.get("required") or []
    return [str(key) for key in required]


# --------------------------------------------------------------------------------------------
# ScriptedAgent
# --------------------------------------------------------------------------------------------


def _get(obj: Any, key: str, default: Any = None) -> Any:
    """Read ``key`` from a mapping or an object, so requests may be dicts or pydantic models."""
    if obj is None:
        return default
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    value = getattr(obj, key, _MISSING)
    if value is not _MISSING:
        return value
    try:
        return obj[key]
    except (KeyError, IndexError, TypeError):
        return default


class ScriptedAgent:
    """Scripted stand-in for a "bring your own agent", to test orchestration deterministically.

    It duck-types the agent protocol: ``await agent.ainvoke(request)`` where ``request`` (dict or
    object) carries ``mode`` (``"planning"``, ``"execute"`` or ``"synthesize"``), ``task``,
    ``step``, ``attempt``, ``guidance`` and ``prior_results``. Replies are plain dicts with
    ``content``, ``deliverable``, ``artifacts``, ``tool_calls`` and ``usage``.

    Args:
        plan: Steps returned in planning mode (sent as ``{"steps": plan}`` JSON) or a raw string
            returned verbatim. Default: one step whose description is the task.
        outputs: ``{step_id: [attempt1, attempt2, ...]}`` (last item repeats for later attempts)
            or a callable ``(request) -> item``. Items are ``str``, ``dict`` (with ``content``,
            ``deliverable``, ``artifacts``) or a ``BaseException`` (raised). Default:
            ``"result of step {id}"``.
        synthesis: Final answer text or a callable ``(request) -> str``. Default: the prior
            results joined one per line.
        latency: Seconds to ``asyncio.sleep`` per call; 0 skips sleeping.
        barrier: When set, every execute call waits on it before returning, so a test can prove
            N steps are in flight at once (the barrier is cyclic: retries need N parties again).
        barrier_timeout: Seconds to wait on the barrier before raising ``TimeoutError``, so a
            sequential run fails clearly instead of hanging.
        name: Agent name, for messages and reprs.
    """

    def __init__(
        self,
        *,
        plan: list[dict[str, Any]] | str | None = None,
        outputs: dict[Any, list[Any]] | Callable[[Any], Any] | None = None,
        synthesis: str | Callable[[Any], str] | None = None,
        latency: float = 0.0,
        barrier: asyncio.Barrier | None = None,
        barrier_timeout: float = 5.0,
        name: str = "scripted-agent",
    ) -> None:
        self.plan = plan
        self.outputs = outputs
        self.synthesis = synthesis
        self.latency = latency
        self.barrier = barrier
        self.barrier_timeout = barrier_timeout
        self.name = name
        self._calls: list[dict[str, Any]] = []
        self._used: set[tuple[str, int]] = set()  # (step id, index) of the outputs served
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ScriptedAgent(name={self.name!r}, calls={self.call_count})"

    @property
    def calls(self) -> list[dict[str, Any]]:
        """Live record of calls: ``{"mode", "step_id", "attempt", "guidance"}`` per call."""
        return self._calls

    @property
    def call_count(self) -> int:
        """Number of calls received so far."""
        return len(self._calls)

    def assert_complete(self) -> None:
        """Check that the script was used up: a scripted plan was asked for, every scripted
        output of every step was served, and a scripted synthesis text was asked for.

        Callables (``outputs`` or ``synthesis`` as a function) are not a script and always pass.

        Raises:
            AssertionError: Parts of the script are left; the message names the agent and
                each unused part.
        """
        with self._lock:
            modes = {call["mode"] for call in self._calls}
            used = set(self._used)
        unused: list[str] = []
        if self.plan is not None and "planning" not in modes:
            unused.append("the plan (no planning call)")
        if isinstance(self.outputs, Mapping):
            for step_id, script in self.outputs.items():
                left = [n for n in range(len(script)) if (str(step_id), n) not in used]
                if left:
                    attempts = ", ".join(str(n + 1) for n in left)
                    unused.append(f"step {step_id} output(s) for attempt {attempts}")
        if isinstance(self.synthesis, str) and "synthesize" not in modes:
            unused.append("the synthesis (no synthesize call)")
        if unused:
            raise AssertionError(
                f"ScriptedAgent {self.name!r} has {len(unused)} scripted part(s) unused after "
                f"{len(self._calls)} call(s): {'; '.join(unused)}"
            )

    async def ainvoke(self, request: Any) -> dict[str, Any]:
        """Answer one protocol request from the script.

        Args:
            request: Dict or object with ``mode``, ``task``, ``step``, ``attempt``, ``guidance``
                and ``prior_results``.

        Returns:
            ``{"content", "deliverable", "artifacts", "tool_calls", "usage"}``.

        Raises:
            BaseException: A scripted exception item for this step/attempt.
            TimeoutError: The barrier did not fill within ``barrier_timeout``.
            ValueError: Unknown ``mode``.
        """
        mode = _get(request, "mode")
        step = _get(request, "step")
        step_id = _get(step, "id")
        attempt = int(_get(request, "attempt", 1) or 1)
        guidance = list(_get(request, "guidance", []) or [])
        with self._lock:
            self._calls.append(
                {"mode": mode, "step_id": step_id, "attempt": attempt, "guidance": guidance}
            )
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        if mode == "planning":
            return _agent_reply(self._plan_text(request))
        if mode == "execute":
            if self.barrier is not None:
                await self._wait_barrier(step_id)
            return await self._execute(request, step_id, attempt)
        if mode == "synthesize":
            return _agent_reply(await self._synthesis_text(request))
        msg = f"ScriptedAgent {self.name!r}: unknown mode {mode!r}"
        raise ValueError(msg)

    def _plan_text(self, request: Any) -> str:
        if isinstance(self.plan, str):
            return self.plan
        steps = self.plan
        if steps is None:
            steps = [{"id": 1, "description": str(_get(request, "task", ""))}]
        return json.dumps({"steps": steps})

    async def _execute(self, request: Any, step_id: Any, attempt: int) -> dict[str, Any]:
        item: Any
        if callable(self.outputs):
            item = self.outputs(request)
            if inspect.isawaitable(item):
                item = await item
        else:
            script = _lookup_step(self.outputs or {}, step_id)
            if script:
                index = min(max(attempt, 1), len(script)) - 1
                item = script[index]
                with self._lock:
                    self._used.add((str(step_id), index))
            else:
                item = f"result of step {step_id}"
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, Mapping):
            return _agent_reply(
                str(item.get("content", "")),
                deliverable=item.get("deliverable"),
                artifacts=dict(item.get("artifacts") or {}),
            )
        if isinstance(item, BaseModel):
            return _agent_reply(item.model_dump_json(), deliverable=item)
        return _agent_reply(str(item))

    async def _synthesis_text(self, request: Any) -> str:
        if callable(self.synthesis):
            text = self.synthesis(request)
            if inspect.isawaitable(text):
                text = await text
            return str(text)
        if self.synthesis is not None:
            return self.synthesis
        prior = _get(request, "prior_results", {}) or {}
        return "\n".join(f"{key}: {value}" for key, value in dict(prior).items())

    async def _wait_barrier(self, step_id: Any) -> None:
        """Wait for the barrier, turning a hang into an explanatory ``TimeoutError``."""
        assert self.barrier is not None
        try:
            async with asyncio.timeout(self.barrier_timeout):
                await self.barrier.wait()
        except TimeoutError as exc:
            msg = (
                f"ScriptedAgent {self.name!r}: execute call for step {step_id!r} waited "
                f"{self.barrier_timeout}s at a barrier of {self.barrier.parties} parties that "
                "never filled; the steps are not running concurrently."
            )
            raise TimeoutError(msg) from exc


def _lookup_step(outputs: Mapping[Any, list[Any]], step_id: Any) -> list[Any]:
    """Find a step's script, tolerating ``1`` vs ``"1"`` id mismatches."""
    if step_id in outputs:
        return list(outputs[step_id])
    for key, value in outputs.items():
        if str(key) == str(step_id):
            return list(value)
    return []


def _agent_reply(
    content: str, *, deliverable: Any = None, artifacts: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Build the plain-dict reply shape of the agent protocol."""
    return {
        "content": content,
        "deliverable": deliverable,
        "artifacts": artifacts or {},
        "tool_calls": [],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }
