"""Chat models per role from config, and structured calls that survive malformed JSON."""

from __future__ import annotations

import functools
import json
import os
import re
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from pydantic import BaseModel, SecretStr

from atlas_graph.errors import ModelConfigError
from atlas_graph.errors import ModelOutputError as ModelOutputError  # importable from here too
from atlas_graph.extras import require_extra
from atlas_graph.usage import Usage

if TYPE_CHECKING:
    from atlas_graph.config import LLMParameters

Role = Literal["student", "teacher", "judge", "arbiter", "probe", "learning", "prompt_rewrite"]
"""The roles a chat model plays; each has its own model in the config or ``models=``."""
SchemaT = TypeVar("SchemaT", bound=BaseModel)
ModelT = TypeVar("ModelT", bound=BaseChatModel)

# OpenAI-compatible endpoints of providers that have one; the key still comes from api_key_env.
PROVIDER_BASE_URLS: dict[str, str | None] = {
    "openai": None,
    "openai-compatible": None,
    "xai": "https://api.x.ai/v1",
    "gemini": "https://generativelanguage.googleapis.com/v1beta/openai/",
    "google": "https://generativelanguage.googleapis.com/v1beta/openai/",
    "anthropic": "https://api.anthropic.com/v1/",
    # Bedrock's OpenAI-compatible Chat Completions endpoint is regional: {region} comes from
    # AWS_REGION (or AWS_DEFAULT_REGION); the key is a Bedrock API key.
    "bedrock": "https://bedrock-runtime.{region}.amazonaws.com/openai/v1",
}

# litellm-style provider prefixes of model ids ("gemini/gemini-2.5-flash"); endpoints reached
# through the OpenAI protocol want the bare id.
_MODEL_PREFIXES = ("openai", "gemini", "google", "xai", "anthropic", "bedrock", "azure")


def model_name_for(params: LLMParameters) -> str:
    """Strip a litellm-style ``provider/`` prefix, which OpenAI-compatible endpoints reject."""
    prefix, _, rest = params.model.partition("/")
    if rest and prefix in (params.provider, *_MODEL_PREFIXES):
        return rest
    return params.model


def chat_model_from_params(params: LLMParameters, *, role: Role) -> BaseChatModel:
    """Build a ``ChatOpenAI`` (or Azure) client for one role.

    Raises:
        ModelConfigError: the key variable is unset or the provider has no OpenAI-compatible
            endpoint and no ``api_base`` was given.
        MissingExtraError: langchain-openai is not installed (the ``openai`` extra).
    """
    require_extra("openai", f"model {params.model} (role {role})")
    api_key = os.environ.get(params.api_key_env) if params.api_key_env else None
    if params.api_key_env and not api_key:
        raise ModelConfigError(
            f"environment variable {params.api_key_env} is not set", role=role, model=params.model
        )
    common: dict[str, Any] = {
        "model": model_name_for(params),
        "temperature": params.temperature,
        "timeout": params.timeout_seconds,
        "max_retries": params.retries,
    }
    if params.top_p is not None:
        common["top_p"] = params.top_p
    if params.max_output_tokens is not None:
        common["max_tokens"] = params.max_output_tokens
    if params.additional_headers:
        common["default_headers"] = dict(params.additional_headers)
    if params.reasoning_effort:
        common["reasoning_effort"] = params.reasoning_effort

    if params.provider == "azure-openai":
        from langchain_openai import AzureChatOpenAI

        if not params.api_base:
            raise ModelConfigError("azure-openai needs api_base (the endpoint)", role=role)
        azure: type[AzureChatOpenAI] = _headers_as_secrets(AzureChatOpenAI)
        return azure(
            azure_endpoint=params.api_base,
            api_key=SecretStr(api_key) if api_key is not None else None,
            api_version=os.environ.get("OPENAI_API_VERSION", "2024-10-21"),
            azure_deployment=common.pop("model"),
            **common,
        )
    if params.provider not in PROVIDER_BASE_URLS and not params.api_base:
        raise ModelConfigError(
            f"provider '{params.provider}' has no OpenAI-compatible endpoint; "
            "set api_base to a compatible gateway",
            role=role,
        )
    from langchain_openai import ChatOpenAI

    chat: type[ChatOpenAI] = _headers_as_secrets(ChatOpenAI)
    return chat(
        base_url=params.api_base or _default_base_url(params.provider, role),
        api_key=SecretStr(api_key or "not-needed"),  # local OpenAI-compatible servers take any
        organization=params.organization,
        **common,
    )


@functools.cache
def _headers_as_secrets(base: type[ModelT]) -> type[ModelT]:
    """``base`` whose ``default_headers`` serialize as a secret reference, not their values.

    LangChain serializes a model's constructor arguments into every traced LLM run (LangSmith
    ``serialized``), and ``llm.additional_headers`` often carry credentials (an ``api-key`` or
    ``Authorization`` header). The subclass keeps the class name, so runs are named as before.
    """

    def lc_secrets(self: Any) -> dict[str, str]:
        return {**super(subclass, self).lc_secrets, "default_headers": "ATLAS_GRAPH_LLM_HEADERS"}

    subclass: type[ModelT] = type(base.__name__, (base,), {"lc_secrets": property(lc_secrets)})
    subclass.__module__ = __name__
    subclass.__qualname__ = base.__qualname__
    return subclass


def _default_base_url(provider: str, role: Role) -> str | None:
    """The provider's OpenAI-compatible endpoint, with Bedrock's region filled in."""
    url = PROVIDER_BASE_URLS.get(provider)
    if url and "{region}" in url:
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if not region:
            raise ModelConfigError(
                f"provider '{provider}' needs AWS_REGION (or AWS_DEFAULT_REGION) "
                "for its OpenAI-compatible endpoint, or an explicit api_base",
                role=role,
            )
        return url.format(region=region)
    return url


def with_max_tokens(model: BaseChatModel, max_tokens: int | None) -> BaseChatModel:
    """A copy of ``model`` capped at ``max_tokens`` when the model has such a field.

    A cap never raises the model's own (``max_output_tokens``): a judge's default budget of
    1,024 tokens does not undo a config that keeps every reply of a small model short.
    """
    if max_tokens is None or "max_tokens" not in type(model).model_fields:
        return model
    own = getattr(model, "max_tokens", None)
    if isinstance(own, int) and own < max_tokens:
        return model
    return model.model_copy(update={"max_tokens": max_tokens})


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)

MAX_JSON_CHARS = 200_000
"""Longer replies are not searched for JSON: no structured reply here needs a tenth of that."""
MAX_JSON_DEPTH = 64
"""Deeper nesting is refused before parsing (the parser recurses once per level)."""
_MAX_SPANS = 16  # balanced spans tried before giving up: bounds the work on hostile text
_STRUCTURAL = re.compile(r'[][{}"\\]')


def extract_json(text: str) -> Any:
    """Find JSON in a reply: whole text, a fenced block, or the first balanced object/array.

    Bounded work on any input: replies over ``MAX_JSON_CHARS`` and nesting deeper than
    ``MAX_JSON_DEPTH`` are refused, and the search for a balanced span is one linear scan.

    Raises:
        ValueError: no JSON found, the reply is too long, or it nests too deeply.
    """
    if len(text) > MAX_JSON_CHARS:
        raise ValueError(f"reply of {len(text)} characters is too long to read as JSON")
    spans = _balanced_spans(text)
    candidates = [text.strip(), *(m.strip() for m in _FENCE.findall(text))]
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except (json.JSONDecodeError, ValueError, RecursionError):
            continue
    for start, end in spans[:_MAX_SPANS]:
        try:
            return json.loads(text[start:end])
        except (json.JSONDecodeError, ValueError, RecursionError):
            continue
    raise ValueError("no JSON object found")


def _balanced_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of every balanced ``{...}``/``[...]``, by start, in one linear scan.

    Quotes count only inside brackets (prose around JSON has apostrophes and stray quotes).

    Raises:
        ValueError: brackets nest deeper than ``MAX_JSON_DEPTH``.
    """
    spans: list[tuple[int, int]] = []
    stack: list[tuple[str, int]] = []
    in_string = False
    escaped_at = -2  # where the last backslash inside a string was
    for match in _STRUCTURAL.finditer(text):
        char, index = match.group(), match.start()
        if in_string:
            if index == escaped_at + 1:  # this character is escaped
                escaped_at = -2
            elif char == "\\":
                escaped_at = index
            elif char == '"':
                in_string = False
            continue
        if char == '"':
            in_string = bool(stack)
        elif char in "{[":
            stack.append((char, index))
            if len(stack) > MAX_JSON_DEPTH:
                raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        elif char in "}]" and stack:
            opener, start = stack.pop()
            if (opener, char) in (("{", "}"), ("[", "]")):
                spans.append((start, index + 1))
            else:
                stack.clear()  # mismatched: whatever was open is not JSON
    spans.sort()
    return spans


def usage_of(message: BaseMessage | None) -> Usage:
    """Token usage of one reply in the export's vocabulary."""
    metadata = getattr(message, "usage_metadata", None) or {}
    prompt = int(metadata.get("input_tokens", 0))
    completion = int(metadata.get("output_tokens", 0))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": int(metadata.get("total_tokens", prompt + completion)),
        "calls": 1,
    }


TRANSIENT_STATUSES = frozenset({408, 409, 429})
"""4xx statuses worth another try: request timeout, conflict, rate limit (and every 5xx)."""


def status_of(error: BaseException) -> int | None:
    """The HTTP status an error carries, whatever library raised it.

    ``status_code`` (openai, httpx-based SDKs, anthropic), ``status`` (aiohttp, some gateways)
    or ``response.status_code`` (``httpx.HTTPStatusError``, ``requests.HTTPError``).
    """
    for value in (
        getattr(error, "status_code", None),
        getattr(error, "status", None),
        getattr(getattr(error, "response", None), "status_code", None),
    ):
        if isinstance(value, int) and not isinstance(value, bool) and 100 <= value < 600:
            return value
    return None


def is_transient(error: BaseException) -> bool:
    """Errors worth retrying a model call for, from any provider: judged by status and type.

    An HTTP status of 408, 409, 429 or any 5xx is transient, any other status is not;
    without a status, timeouts and connection/transport failures (the standard library's,
    httpx's, the openai SDK's) are. LangGraph's ``default_retry_on`` is the reference; unlike
    it, errors that name no status and no transport failure are not retried, since an
    unreadable reply or a bug would only fail again.
    """
    status = status_of(error)
    if status is not None:
        return status in TRANSIENT_STATUSES or status >= 500
    if isinstance(error, ConnectionError | TimeoutError):
        return True
    import httpx

    # not every transport error: UnsupportedProtocol or a proxy refusal will not heal
    if isinstance(error, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError):
        return True
    try:
        import openai
    except ImportError:  # without the openai extra no openai client made the call
        return False
    return isinstance(error, openai.APIConnectionError | openai.APITimeoutError)
