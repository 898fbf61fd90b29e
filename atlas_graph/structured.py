"""Structured replies from any OpenAI-compatible server: the teacher's, judges', probe's.

Three ways to ask a chat model for JSON of a schema (``llm.structured_output``):

* ``function_calling``: a forced call of a tool named after the schema. OpenAI enforces it;
  llama.cpp, and other local servers depending on the model's template, do not, and the model
  answers in prose.
* ``json_schema``: ``response_format: {"type": "json_schema", ...}``. OpenAI, vLLM, Ollama and
  llama.cpp enforce it with a grammar: the reply is always JSON of the schema's shape (numeric
  bounds are not enforced; the schemas clamp).
* ``json_mode``: ``response_format: {"type": "json_object"}`` with the schema in the prompt,
  for servers that know only that.

``auto`` (the default) asks OpenAI's own endpoint by function calling and every other base URL
by ``json_schema``. A forced tool call that an HTTP server answers without one is asked again
once by ``json_schema``, and that model is asked that way from then on (per graph, not per
process).

A reply that still cannot be read is re-asked once with the parse error and the schema; after
that the caller gets ``ModelOutputError`` and records the work as not judged. The error's text
is for logs and the teacher's own re-ask, never for the student.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.runnables import Runnable, RunnableConfig
from pydantic import BaseModel, ValidationError

from atlas_graph.errors import ModelOutputError, one_line
from atlas_graph.models import extract_json, usage_of
from atlas_graph.redaction import scrub_error, scrub_text
from atlas_graph.usage import Usage, sum_usage

StructuredMethod = Literal["function_calling", "json_schema", "json_mode"]
StructuredSetting = Literal["auto", "function_calling", "json_schema", "json_mode"]
SchemaT = TypeVar("SchemaT", bound=BaseModel)

MAX_REPLY_CHARS = 200_000
"""Longer replies are not parsed: no schema here needs a tenth of that."""

_OPENAI_HOSTS = ("api.openai.com", ".openai.azure.com")


def base_url_of(model: BaseChatModel) -> str | None:
    """The endpoint an OpenAI-compatible client talks to (None for other models)."""
    for attribute in ("openai_api_base", "azure_endpoint", "base_url"):
        value = getattr(model, attribute, None)
        if isinstance(value, str) and value:
            return value
    return None


def model_key(model: BaseChatModel) -> str:
    """Which model this is, for remembering how its server answers: class, endpoint, name."""
    name = getattr(model, "model_name", None) or getattr(model, "model", None)
    return f"{type(model).__name__}:{base_url_of(model)}:{name}"


def resolve_method(setting: StructuredSetting, model: BaseChatModel) -> StructuredMethod:
    """``auto``: function calling on OpenAI's endpoints and non-HTTP models, else json_schema."""
    if setting != "auto":
        return setting
    url = base_url_of(model)
    if url is None or any(host in url for host in _OPENAI_HOSTS):
        return "function_calling"
    return "json_schema"


def response_format(
    schema: type[BaseModel], method: StructuredMethod, max_tokens: int | None = None
) -> dict[str, Any]:
    """The ``response_format`` request field of ``method`` (empty for function calling).

    ``max_tokens``, the call's output budget, sizes the bounds a ``json_schema`` gets.
    """
    if method == "json_mode":
        return {"type": "json_object"}
    if method == "json_schema":
        body = schema.model_json_schema()
        strict = is_strict(body)
        if not strict:  # strict mode refuses these keywords; servers with grammars enforce them
            body = bounded(body, text_limit(body, max_tokens))
        return {
            "type": "json_schema",
            "json_schema": {"name": schema.__name__, "schema": body, "strict": strict},
        }
    return {}


MAX_TEXT_CHARS = 400
"""Longest string a grammar lets a structured reply write: a rationale, a concern, guidance."""
MIN_TEXT_CHARS = 40
MAX_LIST_ITEMS = 4
"""Most items a grammar lets a structured reply list (concerns, principles, evidence)."""
CHARS_PER_TOKEN = 1
"""The worst case, so that the bounded strings always fit the token budget: English runs near
4 characters a token, but the digits and dots a looping small model repeats ("1.1.1.1") take
a token each (measured with SmolLM2-135M: at 2 characters a token, plan reviews still ran out)."""


def text_limit(body: dict[str, Any], max_tokens: int | None) -> int:
    """The longest string that lets every string of the schema fit the call's token budget.

    The budget is shared by every string a reply can hold (a list counts its most items), with
    a share kept for the JSON around them.
    """
    if max_tokens is None:
        return MAX_TEXT_CHARS
    share = max_tokens * CHARS_PER_TOKEN // (string_slots(body, body.get("$defs", {})) + 1)
    return max(MIN_TEXT_CHARS, min(MAX_TEXT_CHARS, share))


def string_slots(node: Any, defs: dict[str, Any]) -> int:
    """How many strings a reply of the schema ``node`` can hold, lists at their bound."""
    if not isinstance(node, dict):
        return 0
    reference = node.get("$ref")
    if isinstance(reference, str):
        return string_slots(defs.get(reference.rsplit("/", 1)[-1]), defs)
    if (node.get("type") == "string" and "enum" not in node) or untyped(node):
        return 1
    if node.get("type") == "array":
        return MAX_LIST_ITEMS * string_slots(node.get("items"), defs)
    options = node.get("anyOf") or []
    slots = max((string_slots(option, defs) for option in options), default=0)
    return slots + sum(string_slots(child, defs) for child in node.get("properties", {}).values())


def bounded(body: Any, limit: int = MAX_TEXT_CHARS) -> Any:
    """The schema with every string and list given a length bound, unless it has one.

    Servers that enforce a JSON schema with a grammar (llama.cpp, vLLM) enforce these too. A
    small model that starts repeating itself inside a string (measured with SmolLM2-135M: 30 %
    of replies ran into the token limit mid-string) must then close it and the JSON in time;
    the pydantic models themselves set no bound, so a longer reply from elsewhere still reads.
    """
    if isinstance(body, list):
        return [bounded(item, limit) for item in body]
    if not isinstance(body, dict):
        return body  # any JSON value of the schema: a type name, a default, a number
    result = {key: bounded(value, limit) for key, value in body.items()}
    properties = result.get("properties")
    if isinstance(properties, dict):
        # a field of any shape (a revised plan) becomes bounded text: the readers of such
        # fields take text too (the plan parser does), and a grammar can only bound text
        result["properties"] = {
            name: _as_text(child, limit) if untyped(child) else child
            for name, child in properties.items()
        }
    kind = result.get("type")
    if kind == "string" and "maxLength" not in result and "enum" not in result:
        result["maxLength"] = limit
    if kind == "array" and "maxItems" not in result:
        result["maxItems"] = MAX_LIST_ITEMS
    return result


_TYPED = ("type", "$ref", "anyOf", "allOf", "oneOf", "enum", "const")


def untyped(node: Any) -> bool:
    """Whether a schema node accepts any JSON value (a field typed ``Any``)."""
    return isinstance(node, dict) and not any(key in node for key in _TYPED)


def _as_text(node: dict[str, Any], limit: int) -> dict[str, Any]:
    return {**node, "anyOf": [{"type": "string", "maxLength": limit}, {"type": "null"}]}


def is_strict(body: dict[str, Any]) -> bool:
    """Whether OpenAI's strict mode accepts the schema: closed objects, every field required.

    Strict mode refuses other schemas outright, so it is asked for only where it holds.
    """
    if "$defs" in body or "anyOf" in body:
        return False
    if body.get("type") == "object":
        properties = body.get("properties", {})
        if body.get("additionalProperties") is not False:
            return False
        if set(body.get("required", [])) != set(properties):
            return False
        return all(is_strict(child) for child in properties.values())
    if body.get("type") == "array":
        return is_strict(body.get("items", {}))
    return "type" in body


def schema_instruction(schema: type[BaseModel]) -> str:
    """The sentence that asks for the schema in words (json_mode and re-asks)."""
    body = json.dumps(schema.model_json_schema(), separators=(",", ":"))
    return f"Reply with only a JSON object that matches this JSON schema: {body}"


@dataclass
class StructuredReply(Generic[SchemaT]):
    """What one structured call produced: the value, the tokens it cost, the last reply."""

    value: SchemaT
    usage: Usage
    reply: BaseMessage
    method: StructuredMethod


@dataclass
class Structured(Generic[SchemaT]):
    """A role's model asked for ``schema`` by a method its server enforces.

    Built once per graph, role and schema by ``Services.structured``; ``fallbacks`` is the
    graph's memory of models whose forced tool call was not honoured.
    """

    model: BaseChatModel
    schema: type[SchemaT]
    method: StructuredMethod
    role: str
    deadline: float | None = None
    fallbacks: set[str] = field(default_factory=set)
    # bound runnables per method and call arguments: binding converts the schema to a tool or
    # a response format each time (about 3 ms of pydantic JSON-schema work per call, a fifth
    # of a scripted paired session's CPU), and the result never changes for one Structured
    _bound: dict[tuple[Any, ...], Runnable[Any, BaseMessage]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def _method(self) -> StructuredMethod:
        # fallbacks is empty until a server ignores a tool call: skip the model's key, which
        # reads attributes a model may not have (a pydantic miss costs tens of microseconds)
        if (
            self.method == "function_calling"
            and self.fallbacks
            and model_key(self.model) in self.fallbacks
        ):
            return "json_schema"
        return self.method

    def bound(self, method: StructuredMethod, **kwargs: Any) -> Runnable[Any, BaseMessage]:
        """The model bound for ``method`` (and extra call arguments such as temperature)."""
        try:
            key: tuple[Any, ...] | None = (method, *sorted(kwargs.items()))
            hash(key)
        except TypeError:  # an unhashable call argument: bind afresh
            key = None
        if key is not None and key in self._bound:
            return self._bound[key]
        runnable = self._bind(method, **kwargs)
        if key is not None:
            self._bound[key] = runnable
        return runnable

    def _bind(self, method: StructuredMethod, **kwargs: Any) -> Runnable[Any, BaseMessage]:
        if method == "function_calling":
            try:
                return self.model.bind_tools(
                    [self.schema], tool_choice=self.schema.__name__, **kwargs
                )
            except NotImplementedError:  # models without tool calling answer in JSON text
                return self.model.bind(**kwargs) if kwargs else self.model
        budget = getattr(self.model, "max_tokens", None)
        shape = response_format(self.schema, method, budget if isinstance(budget, int) else None)
        return self.model.bind(response_format=shape, **kwargs)

    async def ainvoke(
        self,
        messages: Sequence[BaseMessage],
        *,
        config: RunnableConfig | None = None,
        **kwargs: Any,
    ) -> StructuredReply[SchemaT]:
        """Ask, fall back from an ignored tool call, re-ask once; then ``ModelOutputError``."""
        usages: list[Usage] = []
        method = self._method()
        asked = list(messages)
        if method == "json_mode":
            asked.append(HumanMessage(schema_instruction(self.schema)))
        reply = await self._call(method, asked, config, kwargs, usages)
        value, error = self.parse(reply)
        if error is not None and self._ignored_tool(method, reply):
            self.fallbacks.add(model_key(self.model))  # its server ignores forced tool calls
            method = "json_schema"
            reply = await self._call(method, asked, config, kwargs, usages)
            value, error = self.parse(reply)
        if error is not None:
            retry = [
                *asked,
                AIMessage(_text(reply)[:2000]),
                HumanMessage(_reask(self.schema, error)),
            ]
            reply = await self._call(method, retry, config, kwargs, usages)
            value, error = self.parse(reply)
        if value is None:
            raise ModelOutputError(
                f"{self.role} reply is not a valid {self.schema.__name__} ({error}); "
                f"reply began: {_text(reply)[:120]!r}",
                sum_usage(usages),
                role=self.role,
                schema=self.schema.__name__,
            )
        return StructuredReply(value, sum_usage(usages), reply, method)

    def _ignored_tool(self, method: StructuredMethod, reply: BaseMessage) -> bool:
        """A forced tool call that an HTTP server answered without one: ask by JSON schema."""
        http = base_url_of(self.model) is not None
        return http and method == "function_calling" and not _tool_calls(reply)

    async def _call(
        self,
        method: StructuredMethod,
        messages: list[BaseMessage],
        config: RunnableConfig | None,
        kwargs: dict[str, Any],
        usages: list[Usage],
    ) -> BaseMessage:
        # a whole-call deadline: client timeouts bound each read, so a server that drips a
        # byte a second would otherwise hold the session for ever
        try:
            async with asyncio.timeout(self.deadline):
                try:
                    reply = await self.bound(method, **kwargs).ainvoke(messages, config=config)
                except Exception as error:
                    cut = _cut_off(error)
                    if cut is None:
                        raise
                    reply = cut
        except (ValueError, TypeError, LookupError, AttributeError, RecursionError) as error:
            # a 200 answer the client cannot read (HTML, another API's JSON, no choices, tool
            # arguments that are not an object): the server will not answer better if asked
            # the same again, so it is an unreadable reply (not judged), never a crash loop
            raise ModelOutputError(
                f"{self.role} model's answer is malformed: {scrub_text(one_line(error))[:200]}",
                sum_usage(usages),
                role=self.role,
                schema=self.schema.__name__,
            ) from None
        except Exception as error:
            scrub_error(error)  # a 401 body quotes the key it was sent
            raise
        usages.append(usage_of(reply))
        return reply

    def parse(self, reply: BaseMessage) -> tuple[SchemaT | None, str | None]:
        """The schema's value from a tool call or the text, or why there is none."""
        value, error = self._parse(reply)
        if error is not None and reply.response_metadata.get("finish_reason") == "length":
            error = f"the reply was cut off at the token limit ({error})"
        return value, error

    def _parse(self, reply: BaseMessage) -> tuple[SchemaT | None, str | None]:
        for call in _tool_calls(reply):
            if call.get("name") == self.schema.__name__:
                try:
                    return self.schema.model_validate(call.get("args") or {}), None
                except ValidationError as error:
                    return None, one_line(error)
        text = _text(reply)
        if len(text) > MAX_REPLY_CHARS:
            return None, f"reply of {len(text)} characters is too long to read"
        try:
            return self.schema.model_validate(extract_json(text)), None
        except (ValueError, ValidationError, RecursionError, TypeError) as error:
            return None, one_line(error)


def _cut_off(error: Exception) -> AIMessage | None:
    """The reply inside the openai SDK's refusal to parse a truncated completion, if it is one.

    With ``response_format`` set, langchain-openai reads the reply through the SDK's parser,
    which raises instead of returning a reply cut off at the token limit (or by a content
    filter). That is an unreadable reply, to re-ask and then record, not a crash.
    """
    try:
        from openai import ContentFilterFinishReasonError, LengthFinishReasonError
    except ImportError:  # without the openai extra no openai client made the call
        return None
    completion: Any
    if isinstance(error, LengthFinishReasonError):
        completion, reason = error.completion, "length"
    elif isinstance(error, ContentFilterFinishReasonError):
        completion, reason = getattr(error, "completion", None), "content_filter"
    else:
        return None
    content = ""
    usage: UsageMetadata | None = None
    if completion is not None:
        if completion.choices:
            content = completion.choices[0].message.content or ""
        if completion.usage is not None:
            usage = {
                "input_tokens": completion.usage.prompt_tokens,
                "output_tokens": completion.usage.completion_tokens,
                "total_tokens": completion.usage.total_tokens,
            }
    return AIMessage(
        content,
        response_metadata={"finish_reason": reason},
        usage_metadata=usage,
    )


def finite_number(value: Any) -> float:
    """``value`` as a finite float; anything else (None, a list, NaN, a bool) is a ValueError.

    Validators call this so that a bad value in a reply is a validation error (pydantic turns
    only ``ValueError`` into one), never a ``TypeError`` that stops the session.
    """
    if isinstance(value, bool) or value is None:
        raise ValueError(f"expected a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"expected a number, got {str(value)[:40]!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"expected a finite number, got {value!r}")
    return number


def clamp_unit(value: Any) -> float:
    """A number forced into [0, 1]; anything that is not a finite number is a ValueError."""
    return min(1.0, max(0.0, finite_number(value)))


def _tool_calls(reply: BaseMessage) -> list[dict[str, Any]]:
    calls = getattr(reply, "tool_calls", None) or []
    return [call for call in calls if isinstance(call, dict)]


def _text(reply: BaseMessage) -> str:
    content = reply.content if isinstance(reply, AIMessage) else ""
    return content if isinstance(content, str) else json.dumps(content)


def _reask(schema: type[BaseModel], error: str) -> str:
    return f"Your reply could not be read as {schema.__name__}: {error}. " + schema_instruction(
        schema
    )
