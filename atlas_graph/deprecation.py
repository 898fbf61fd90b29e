"""Old names of renamed functions, kept for one release: each call warns, then runs the new one.

Async functions are named ``aname`` and their sync twins ``name`` (``arun``/``run``, as
LangChain's ``ainvoke``/``invoke``). An old name is made with ``renamed`` in the module that
holds the new one, so it stays importable from wherever it was importable before.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def renamed(function: Callable[P, R], old_name: str) -> Callable[P, R]:
    """``function`` under its previous name; every call emits a ``DeprecationWarning``.

    The alias has ``function``'s signature (``inspect.signature`` follows ``__wrapped__``) and
    returns what it returns, so an old async name still gives a coroutine to await. The
    warning points at the caller's line and names the replacement.
    """
    message = (
        f"{old_name} is deprecated and will be removed in the next release; "
        f"use {function.__module__}.{function.__name__}"
    )

    @functools.wraps(function)
    def alias(*args: P.args, **kwargs: P.kwargs) -> R:
        warnings.warn(message, DeprecationWarning, stacklevel=2)
        return function(*args, **kwargs)

    alias.__name__ = alias.__qualname__ = old_name
    alias.__doc__ = f"Deprecated alias of ``{function.__name__}``: {message}."
    alias.__deprecated__ = message  # type: ignore[attr-defined]  # PEP 702's marker
    return alias
