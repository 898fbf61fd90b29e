"""Scoring answers against an expected answer: is the session's final answer correct?

A task line carries its expected answer as ``ground_truth`` or Atlas's ``expected_answer``.
A scorer compares the final answer with it and says ``True``, ``False`` or ``None`` (it could
not tell: no expected answer, or the judge's reply was unreadable), so accuracy counts only
tasks that were scored.

Scorers by name: ``exact`` (after trimming, case folding and collapsing whitespace),
``numeric`` (the answer's last number within ``tolerance`` of the expected number),
``contains`` (the expected text appears in the answer), ``regex`` (the expected answer is a
pattern the answer matches), ``judge`` (an LLM judge: the ``judge`` model, else the rim's
small model, else the teacher's), or ``module:function`` (a Python scorer called with
``(answer, expected, task)`` that returns a bool, a number ≥ 0.5 meaning correct, or a dict
with ``correct``).
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from atlas_graph.callables import load_object
from atlas_graph.config import AtlasConfig, LLMParameters
from atlas_graph.errors import AtlasUserError, ModelOutputError
from atlas_graph.models import chat_model_from_params
from atlas_graph.structured import Structured, resolve_method
from atlas_graph.usage import Usage

SCORERS = ("exact", "numeric", "contains", "regex", "judge")
"""Built-in scorer names; anything with a colon is a Python scorer ``module:function``."""

_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|[-+]?\.\d+")


class Scorer(Protocol):
    """Says whether an answer is correct; ``None`` when it cannot tell."""

    name: str

    async def ascore(self, answer: str, expected: Any, task: str) -> bool | None:
        """Whether ``answer`` matches ``expected`` for ``task``."""


def normalize(text: Any) -> str:
    """Text compared by ``exact``/``contains``: trimmed, case-folded, one space, no end dot."""
    return " ".join(str(text).split()).casefold().rstrip(".").strip()


def numbers_in(text: str) -> list[float]:
    """Every number in ``text`` in order (thousands separators allowed)."""
    found = []
    for match in _NUMBER.findall(text):
        try:
            found.append(float(match.replace(",", "")))
        except ValueError:
            continue
    return found


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    found = numbers_in(str(value))
    return found[-1] if len(found) == 1 else None


class ExactScorer:
    """The normalized answer equals the normalized expected answer (any of a list)."""

    name = "exact"

    async def ascore(self, answer: str, expected: Any, task: str) -> bool | None:
        options = expected if isinstance(expected, list) else [expected]
        return any(normalize(answer) == normalize(option) for option in options)


class ContainsScorer:
    """The normalized expected answer occurs in the normalized answer (any of a list)."""

    name = "contains"

    async def ascore(self, answer: str, expected: Any, task: str) -> bool | None:
        options = expected if isinstance(expected, list) else [expected]
        return any(normalize(option) in normalize(answer) for option in options)


class RegexScorer:
    """The expected answer is a regular expression the answer matches (``re.search``)."""

    name = "regex"

    async def ascore(self, answer: str, expected: Any, task: str) -> bool | None:
        try:
            return re.search(str(expected), answer, re.IGNORECASE | re.DOTALL) is not None
        except re.error as error:
            raise AtlasUserError(
                f"expected answer {expected!r} is not a regular expression: {error}"
            ) from None


class NumericScorer:
    """The answer's last number is within ``tolerance`` of the expected number.

    The last number, because models tend to reason first and answer last; ``tolerance`` is
    absolute, and also relative to the expected value's size (whichever is larger).
    """

    name = "numeric"

    def __init__(self, tolerance: float = 1e-6) -> None:
        if tolerance < 0:
            raise AtlasUserError(f"tolerance must not be negative, got {tolerance}")
        self.tolerance = tolerance

    async def ascore(self, answer: str, expected: Any, task: str) -> bool | None:
        target = _as_number(expected)
        if target is None:
            return None  # nothing numeric to compare with: unscored, not wrong
        found = numbers_in(answer)
        if not found:
            return False
        return math.isclose(found[-1], target, abs_tol=self.tolerance, rel_tol=self.tolerance)


class PythonScorer:
    """A user function ``(answer, expected, task)`` (sync or async) decides."""

    def __init__(self, reference: str) -> None:
        self.name = reference
        function = load_object(reference)
        if not callable(function):
            raise AtlasUserError(f"scorer {reference} is not callable")
        self.function: Callable[..., Any] = function

    async def ascore(self, answer: str, expected: Any, task: str) -> bool | None:
        value = self.function(answer, expected, task)
        if inspect.isawaitable(value):
            value = await value
        return _verdict(value, self.name)


def _verdict(value: Any, name: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value) >= 0.5
    if isinstance(value, Mapping) and "correct" in value:
        return _verdict(value["correct"], name)
    raise AtlasUserError(
        f"scorer {name} returned {type(value).__name__}; return a bool, a number or "
        "{'correct': bool}"
    )


class AnswerJudgement(BaseModel):
    """The LLM judge's reply."""

    correct: bool
    rationale: str = Field(default="", description="one sentence on why")


JUDGE_SYSTEM = (
    "You grade answers. Given a task, a reference answer and a candidate answer, decide "
    "whether the candidate reaches the same final result as the reference. Ignore wording, "
    "formatting and extra explanation; judge only the result. Reply in JSON."
)


class JudgeScorer:
    """An LLM compares answer and reference (structured output, one re-ask).

    An unreadable reply leaves the task unscored (``None``) rather than wrong.
    """

    name = "judge"

    def __init__(self, model: BaseChatModel, params: LLMParameters | None = None) -> None:
        setting = params.structured_output if params is not None else "auto"
        self.structured = Structured(
            model, AnswerJudgement, resolve_method(setting, model), "judge"
        )
        self.usage: list[Usage] = []

    async def ascore(self, answer: str, expected: Any, task: str) -> bool | None:
        messages = [
            SystemMessage(JUDGE_SYSTEM),
            HumanMessage(
                f"Task:\n{task}\n\nReference answer:\n{expected}\n\nCandidate answer:\n{answer}"
            ),
        ]
        try:
            reply = await self.structured.ainvoke(messages)
        except ModelOutputError as error:
            self.usage.append(error.usage)
            return None
        self.usage.append(reply.usage)
        return reply.value.correct


def _judge_model(
    config: AtlasConfig, models: Mapping[str, BaseChatModel] | None
) -> tuple[BaseChatModel, LLMParameters | None]:
    given = models or {}
    for role in ("judge", "teacher"):
        if role in given:
            return given[role], None
    for params in (config.rim.small_model, config.teacher.llm):
        if params is not None:
            return chat_model_from_params(params, role="judge"), params
    raise AtlasUserError(
        "the judge scorer needs a model: set rim.small_model or teacher.llm, or pass "
        "models={'judge': ...}"
    )


def make_scorer(
    spec: str | Scorer,
    *,
    tolerance: float = 1e-6,
    config: AtlasConfig | None = None,
    models: Mapping[str, BaseChatModel] | None = None,
) -> Scorer:
    """The scorer a name (or ``module:function``) stands for; a ready scorer passes through.

    Raises:
        AtlasUserError: Unknown name, unloadable function, or a judge without a model.
    """
    if not isinstance(spec, str):
        return spec
    if ":" in spec:
        return PythonScorer(spec)
    match spec:
        case "exact":
            return ExactScorer()
        case "contains":
            return ContainsScorer()
        case "regex":
            return RegexScorer()
        case "numeric":
            return NumericScorer(tolerance)
        case "judge":
            model, params = _judge_model(config or AtlasConfig(), models)
            return JudgeScorer(model, params)
    raise AtlasUserError(
        f"unknown scorer {spec!r}: expected one of {', '.join(SCORERS)} or module:function"
    )


def default_scorer(expected: Any) -> str:
    """``numeric`` when the expected answer is a number, else ``exact``."""
    numeric = not isinstance(expected, list) and _as_number(expected) is not None
    return "numeric" if numeric else "exact"


async def ascore_answer(
    scorer: Scorer | None, answer: str, expected: Any, task: str, *, answered: bool = True
) -> bool | None:
    """``correct`` of a result line: None without an expected answer; False without answer."""
    if expected is None:
        return None
    if not answered:
        return False
    chosen = scorer or make_scorer(default_scorer(expected))
    return await chosen.ascore(answer, expected, task)
