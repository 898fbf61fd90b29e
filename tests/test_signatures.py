"""The public entry points say in their signatures what each parameter takes."""

from __future__ import annotations

import collections.abc
import inspect
import types
import typing
from collections.abc import Callable
from typing import Any

import pytest

import atlas_graph
from atlas_graph import (
    aapprove_plan,
    aopen_graph,
    approve_plan,
    aresume_session,
    arun,
    resume_session,
    run,
)

CONTAINERS = {
    collections.abc.Mapping,
    collections.abc.Sequence,
    collections.abc.Iterable,
    collections.abc.Callable,
    dict,
    list,
    tuple,
}


def loose(hint: object) -> bool:
    """``Any`` as the hint, as a member of a union, or as what a container holds."""
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    arguments = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(loose(member) for member in arguments)
    if origin in CONTAINERS:
        # Callable[..., object] is fine: a function's own return type is its business
        return any(argument is Any for argument in arguments if argument is not Ellipsis)
    return False


def hints(function: Callable[..., object]) -> dict[str, object]:
    return typing.get_type_hints(inspect.unwrap(function), include_extras=True)


@pytest.mark.parametrize(
    "function",
    [arun, run, aopen_graph, aresume_session, resume_session, aapprove_plan, approve_plan],
)
def test_every_parameter_is_annotated_without_any(function: Callable[..., object]) -> None:
    signature = inspect.signature(inspect.unwrap(function))
    found = hints(function)
    for name, parameter in signature.parameters.items():
        assert parameter.kind is not inspect.Parameter.VAR_KEYWORD, f"{name}: untyped **kwargs"
        assert name in found, f"{function.__name__}({name}) has no annotation"
        assert not loose(found[name]), f"{function.__name__}({name}: {found[name]}) is loose"


def test_run_and_arun_take_the_same_keyword_only_arguments() -> None:
    sync, coro = inspect.signature(run), inspect.signature(arun)
    assert list(sync.parameters) == list(coro.parameters)
    assert hints(run) == hints(arun)
    keyword_only = [
        name
        for name, parameter in coro.parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    assert keyword_only == list(coro.parameters)[1:]  # all but the task


def test_known_shapes() -> None:
    found = hints(arun)
    assert (
        typing.get_args(found["mode"])[0] == typing.Literal["auto", "paired", "coach", "escalate"]
    )
    assert atlas_graph.PlanDecision in typing.get_args(found["resume"]) or any(
        atlas_graph.PlanDecision in typing.get_args(member)
        for member in typing.get_args(found["resume"])
    )
