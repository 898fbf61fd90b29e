"""User code named in config: resolve ``module:attribute`` and call it, sync or async."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import sys
from pathlib import Path
from typing import Any

from atlas_graph.errors import ImportReferenceError, one_line_error


def load_object(
    reference: str, attribute: str | None = None, working_directory: str | Path | None = None
) -> Any:
    """Import ``module:attribute`` (or ``module`` plus a separate ``attribute``).

    Args:
        reference: ``package.module:name`` or ``package.module`` when ``attribute`` is given.
        attribute: Dotted attribute path inside the module.
        working_directory: Folder to put on ``sys.path`` first, for user code outside a package.
    """
    module_name, _, inline_attribute = reference.partition(":")
    attribute = attribute or inline_attribute
    if not module_name or not attribute:
        raise ImportReferenceError(
            reference, f"'{reference}' is not an import reference; expected 'package.module:name'"
        )
    if working_directory is not None:
        folder = str(Path(working_directory).resolve())
        if folder not in sys.path:
            sys.path.insert(0, folder)
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as error:  # a syntax error or a failing import in user code, too
        raise ImportReferenceError(
            reference, f"cannot import module '{module_name}': {one_line_error(error)}"
        ) from error
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError as error:
            raise ImportReferenceError(
                reference, f"module '{module_name}' has no attribute '{attribute}'"
            ) from error
    return target


async def call_maybe_async(function: Any, *arguments: Any) -> Any:
    """Call user code that may be sync or async; sync code runs in a worker thread."""
    if inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(
        getattr(function, "__call__", None)  # noqa: B004 - objects with an async __call__
    ):
        return await function(*arguments)
    result = await asyncio.to_thread(function, *arguments)
    if inspect.isawaitable(result):
        result = await result
    return result
