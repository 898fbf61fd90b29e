"""Scrub secrets from exported data: the last line of defence before a trace leaves the store.

Sessions should never hold secrets, but callers put what they like into session metadata and
agents echo what they were given. Two passes catch what slips through:

- by key: a value under a key that names a credential (``api_key``, ``password``,
  ``authorization``, ``*_token``, ...) is replaced, whatever its type;
- by shape: inside any text, provider API keys (``sk-...``, ``lsv2_...``, ``AKIA...``,
  ``ghp_...``), ``Bearer`` / ``Basic`` credentials and DSN passwords are replaced.

Token *counts* (``prompt_tokens``, ``total_tokens``, ``max_tokens``) are not secrets and keep
their values.
"""

from __future__ import annotations

import contextlib
import functools
import re
from typing import Any

from atlas_graph.storage.persistence import redact_dsn

REDACTED = "[redacted]"

# Keys whose value is a credential, compared lowercased with '-' read as '_'.
_SECRET_KEYS = frozenset({
    "api_key", "apikey", "x_api_key", "secret", "client_secret", "secret_key", "password",
    "passwd", "pwd", "authorization", "proxy_authorization", "auth", "token", "access_token",
    "refresh_token", "id_token", "auth_token", "bearer", "private_key", "credentials",
    "cookie", "set_cookie", "aws_secret_access_key", "session_token",
})  # fmt: skip
_SECRET_KEY_SUFFIXES = ("_api_key", "_apikey", "_secret", "_password", "_token", "_private_key")

_SECRET_TEXT = re.compile(
    r"\b(?:sk|rk|pk)-(?:[A-Za-z0-9]+-)*[A-Za-z0-9_]{16,}"  # OpenAI-style and similar keys
    r"|\blsv2_[A-Za-z0-9_]{16,}"  # LangSmith
    r"|\bAKIA[0-9A-Z]{16}\b"  # AWS access key id
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}"  # GitHub tokens
    r"|\bxox[abprs]-[A-Za-z0-9-]{10,}"  # Slack tokens
    r"|\bAIza[0-9A-Za-z_-]{30,}"  # Google API keys
    r"|\b(?:Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}",
)
# ``api_key=...``, ``"x-api-key": "..."``, ``Authorization: ...`` inside free text.
_KEYED_TEXT = re.compile(
    r"(?P<head>\b(?:x[_-]api[_-]key|api[_-]?key|access[_-]token|auth[_-]token|client[_-]secret"
    r"|secret|password|passwd|authorization)[\"']?\s*[:=]\s*[\"']?)"
    r"(?!\[redacted\])(?P<secret>(?:Bearer\s+|Basic\s+)?[^\s\"',;&]{4,})",
    re.I,
)
# Fast gate: every fragment (lowercased) that a secret key name or secret text must contain,
# short enough that JSON escaping cannot split it. Plain substring tests: a regular expression
# with this many case-insensitive branches costs milliseconds on a 15 kB trace.
_FRAGMENTS = (
    "sk-", "rk-", "pk-", "lsv2_", "akia", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "xox", "aiza",
    "bearer", "basic", "://", "passw", "pwd", "secret", "api_key", "api-key", "apikey", "auth",
    "credential", "cookie", "private_key", "private-key", "privatekey",
)  # fmt: skip
# "token" opens the gate unless every occurrence is a token count or the usage key.
_HARMLESS_TOKENS = ('tokens"', 'token_usage"')


def is_secret_key(key: str) -> bool:
    """Whether a mapping key names a credential (``total_tokens`` does not)."""
    name = key.lower().replace("-", "_")
    return name in _SECRET_KEYS or name.endswith(_SECRET_KEY_SUFFIXES)


def scrub_text(text: str) -> str:
    """``text`` with API keys, bearer credentials and DSN passwords replaced."""
    if not may_hold_secrets(text):
        return text
    text = _SECRET_TEXT.sub(REDACTED, redact_dsn(text))
    return _KEYED_TEXT.sub(lambda match: match["head"] + REDACTED, text)


def may_hold_secrets(json_text: str) -> bool:
    """Whether a text or JSON document needs ``scrub`` (``False``: it surely holds no secret)."""
    text = json_text.lower()
    if any(fragment in text for fragment in _FRAGMENTS):
        return True
    tokens = text.count("token")
    return tokens > 0 and tokens > sum(text.count(harmless) for harmless in _HARMLESS_TOKENS)


def scrub(value: Any) -> Any:
    """A copy of a JSON value with secrets replaced, by key and by shape."""
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {
            key: REDACTED if _is_set(item) and is_secret_key(str(key)) else scrub(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [scrub(item) for item in value]
    return value


def _is_set(value: Any) -> bool:
    """Empty values (``None``, ``""``) stay as they are: there is nothing to hide."""
    return value is not None and value != ""


def scrub_error(error: BaseException) -> BaseException:
    """``error`` with secrets scrubbed from its text, in place (type and cause kept).

    A provider's 401 body quotes the key it was sent; the exception's message is what reaches
    error events, the console, checkpoint error writes and traces.
    """
    error.args = tuple(scrub_text(arg) if isinstance(arg, str) else arg for arg in error.args)
    for attribute in ("message", "body"):
        value = getattr(error, attribute, None)
        if isinstance(value, str | dict | list):
            with contextlib.suppress(AttributeError):  # read-only on some classes
                setattr(error, attribute, scrub(value))
    return error


def langsmith_client() -> Any:
    """A LangSmith client whose every upload is scrubbed, or ``None`` (tracing off, or the
    process's shared client already scrubs).

    The hooks (``anonymizer`` covers run errors, ``hide_*`` inputs, outputs and metadata) are
    installed on the process's shared client when this runs before anything traced; a shared
    client created earlier by the host is left alone and a scrubbing one of our own is returned
    for the session's tracer instead.
    """
    from langsmith.run_trees import get_cached_client
    from langsmith.utils import tracing_is_enabled

    if not tracing_is_enabled():
        return None
    client = get_cached_client(**_HOOKS)
    if getattr(client, "_anonymizer", None) is scrub:
        return None
    return _own_client()


_HOOKS: dict[str, Any] = {
    "anonymizer": scrub,
    "hide_inputs": scrub,
    "hide_outputs": scrub,
    "hide_metadata": scrub,
}


@functools.cache
def _own_client() -> Any:
    from langsmith import Client

    return Client(**_HOOKS)
