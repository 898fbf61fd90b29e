"""Parse, validate and schedule the dependency-aware plans the student drafts.

The student (an LLM or a user's Python agent) writes its plan however it likes: JSON in code
fences or wrapped in prose, string ids such as ``"step_2"``, alias keys, or a plain bulleted
list. This module turns all of that into normalised steps, reports what would make a plan
unschedulable, and answers the scheduling questions the graph asks (what can run next, how deep
the plan is). Everything here is a pure function without I/O or global state, and every value
it returns is plain JSON-shaped data, because plans live in LangGraph state.

A normalised step is ``{"id": int, "description": str, "depends_on": list[int], "tool": str |
None, "tool_params": dict}``; a plan is ``{"steps": [...], "execution_mode": "single_shot" |
"stepwise"}``.
"""

from __future__ import annotations

import copy
import heapq
import json
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple, TypeVar

from atlas_graph.errors import PlanParseError
from atlas_graph.state import Plan, StepSpec

_T = TypeVar("_T")

_ID_KEYS = ("id", "step_id")
_DESCRIPTION_KEYS = ("description", "task", "title", "step", "text", "action")
_DEPENDS_KEYS = ("depends_on", "dependencies", "deps")
_TOOL_KEYS = ("tool",)
_PARAMS_KEYS = ("tool_params", "tool_args", "arguments", "params")
_TOOL_NAME_KEYS = ("name", "tool")
_TOOL_OBJECT_PARAMS_KEYS = ("tool_params", "arguments", "args", "params", "parameters")

# "2", "2.", "2)", "#2", "s2", "step_2", "Step 2", "step-2", "task 2:" -> 2.
_ID_RE = re.compile(r"(?:(?:step|task|s|t)\s*[_\-#:]?\s*|#\s*)?(\d+)\s*[.):]?", re.IGNORECASE)
# A dependency written as one string naming several steps: "1, 2", "step 1 and step 3".
_DEPENDS_SPLIT_RE = re.compile(r"\s*(?:[,;&/]|\band\b)\s*", re.IGNORECASE)
_FENCE_RE = re.compile(r"```[ \t]*[\w+-]*[ \t]*\r?\n?(.*?)```", re.DOTALL)
# "- x", "* x", "+ x", "• x", "1. x", "1) x", "Step 1: x"; an optional "[ ]" checkbox is dropped.
_LIST_ITEM_RE = re.compile(
    r"\s*(?:[-*+•]|\d{1,4}[.)]|step\s*\d{1,4}\s*[:.)-])\s+(?:\[[ xX]\]\s+)?(?P<text>\S.*)",
    re.IGNORECASE,
)
_SNIPPET_CHARS = 60
# Each failed start of an embedded JSON value costs a decode attempt; stop searching after this
# many so adversarial text full of brackets cannot make parsing quadratic.
_MAX_JSON_FAILURES = 500


class _Draft(NamedTuple):
    """A step before ids are made unique."""

    id: int | None
    description: str
    depends_on: list[int]
    tool: str | None
    tool_params: dict[str, Any]


def parse_plan(raw: str | dict[str, Any] | list[Any]) -> list[StepSpec]:
    """Return normalised steps from whatever the student produced.

    Accepted shapes, tried in this order for text:

    * JSON: an object with ``"steps"``, an object with ``"plan"`` (a list of steps or an object
      with ``"steps"``), or a bare list of steps. The whole text is tried first, then each
      fenced code block, then each top-level JSON object/array embedded in prose, left to
      right (giving up after 500 brackets that start no valid JSON); the first that yields a
      usable step wins. A JSON string holding such JSON (double-encoded output) is decoded
      once more.
    * Otherwise a numbered or bulleted list (``1. x``, ``2) x``, ``- x``, ``* x``,
      ``Step 1: x``): one step per item, ids 1..n, no dependencies. Prose lines around the
      list are ignored; indented lines right after an item continue that item.

    A ``dict`` or ``list`` argument is read as already-decoded JSON and is never mutated.

    Steps may be strings (the description) or objects. Keys are matched case-insensitively
    and aliases are accepted: description under ``description``/``task``/``title``/``step``/
    ``text``/``action`` (the first non-empty string that is not just a step number wins; a
    bare number such as ``"step": "2"`` is read as the id), dependencies under ``depends_on``/
    ``dependencies``/``deps``, parameters under ``tool_params``/``tool_args``/``arguments``/
    ``params``. Ids and dependencies may be ints or strings such as ``"2"``, ``"2."``,
    ``"s2"``, ``"step_2"`` or ``"Step 2"``; dependencies may also be a single value, null, or
    one string naming several (``"1, 2"``). Dependencies that name no step number are dropped.
    Steps without a usable id, and later steps that repeat an id, get the smallest positive
    integer not yet used, in step order. Steps with an empty description are dropped.

    Args:
        raw: The student's output: text, or already-decoded JSON.

    Returns:
        Normalised steps in the student's order, as plain dicts.

    Raises:
        PlanParseError: No usable step could be found; the message says why, in one line.
    """
    if isinstance(raw, dict | list):
        steps, reason = _steps_from_json(raw)
        if steps:
            return steps
        raise PlanParseError(reason)
    if not isinstance(raw, str):
        raise PlanParseError(f"expected plan text, a dict or a list, got {type(raw).__name__}")
    text = raw.strip()
    if not text:
        raise PlanParseError("plan text is empty")

    first_reason: str | None = None
    for value in _json_values(text):
        steps, reason = _steps_from_json(value)
        if steps:
            return steps
        first_reason = first_reason or reason

    items = _list_items(text)
    if items:
        return [_step(index, item, [], None, {}) for index, item in enumerate(items, start=1)]

    if first_reason is None:
        first_reason = "no JSON plan and no numbered or bulleted list found"
        json_error = _first_json_error(text)
        if json_error:
            first_reason = f"no usable JSON plan ({json_error}) and no numbered or bulleted list"
    raise PlanParseError(f"{first_reason}; text starts {_snippet(text)}")


def plan_issues(steps: Sequence[StepSpec]) -> list[str]:
    """Problems that make a plan unschedulable: unknown dependencies, self-dependencies, cycles.

    Duplicate ids are reported too, because a scheduler keyed by id cannot run such a plan.
    Lines come in a fixed order: duplicate ids, then each step's own problems by step id and
    dependency, then one line per group of mutually dependent steps, starting from its lowest
    id. In cycle lines ``a -> b`` reads "a depends on b".

    Args:
        steps: Normalised steps.

    Returns:
        One human-readable line per problem; an empty list when the plan can be scheduled.
    """
    issues: list[str] = []
    seen: set[int] = set()
    duplicates: set[int] = set()
    for step in steps:
        step_id = step["id"]
        if step_id in seen:
            duplicates.add(step_id)
        seen.add(step_id)
    issues.extend(f"duplicate step id {step_id}" for step_id in sorted(duplicates))

    declared = _declared_dependencies(steps)
    for step_id in sorted(declared):
        for dep in declared[step_id]:
            if dep == step_id:
                issues.append(f"step {step_id} depends on itself")
            elif dep not in declared:
                issues.append(f"step {step_id} depends on unknown step {dep}")

    graph = _dependency_graph(steps)
    for group in strongly_connected(graph):
        if len(group) < 2:
            continue
        cycle = _shortest_cycle(graph, group)
        line = "dependency cycle: " + " -> ".join(str(step_id) for step_id in cycle)
        if len(group) > len(cycle) - 1:
            line += f" (steps {', '.join(str(step_id) for step_id in group)} depend on each other)"
        issues.append(line)
    return issues


def single_step_plan(task: str, steps: Sequence[StepSpec] | None = None) -> Plan:
    """Collapse a plan into one step (coach lane / unschedulable plans).

    The sub-steps become a numbered checklist in the step's description so the work they
    describe is not lost. They are listed in dependency order (ties by id) when the plan has no
    cycle, ignoring unknown and self-dependencies; otherwise, or with duplicate ids, in id order.

    Args:
        task: The task the plan is for.
        steps: Normalised steps to fold in, if any.

    Returns:
        A ``single_shot`` plan with one step, id 1, no tool.
    """
    description = task.strip()
    if steps:
        ordered = _ordered_for_reading(steps)
        checklist = "\n".join(
            f"{number}. {step['description']}" for number, step in enumerate(ordered, start=1)
        )
        description = f"{description}\n\nWork through these steps:\n{checklist}".strip()
    step = _step(1, description, [], None, {})
    return {"steps": [step], "execution_mode": "single_shot"}


def stepwise_plan(steps: Sequence[StepSpec]) -> Plan:
    """Wrap steps as a plan executed step by step along its dependencies.

    The steps are deep-copied so later edits to the plan in state never alias the caller's data.
    """
    return {"steps": copy.deepcopy(list(steps)), "execution_mode": "stepwise"}


def ancestors(steps: Sequence[StepSpec], step_id: int) -> list[int]:
    """Every step ``step_id`` depends on, directly or not, in id order."""
    depends = {step["id"]: step["depends_on"] for step in steps}
    seen: set[int] = set()
    pending = list(depends.get(step_id, []))
    while pending:
        current = pending.pop()
        if current not in seen:
            seen.add(current)
            pending.extend(depends.get(current, []))
    return sorted(seen)


def ready_step_ids(steps: Sequence[StepSpec], finished: set[int], started: set[int]) -> list[int]:
    """Ids of steps not yet started whose dependencies have all finished, in id order.

    Finished steps count as started. A step that depends on an unknown step or on itself never
    becomes ready, which is why plans should pass ``plan_issues`` first.
    """
    ready = {
        step["id"]
        for step in steps
        if step["id"] not in started
        and step["id"] not in finished
        and all(dep in finished for dep in step.get("depends_on") or [])
    }
    return sorted(ready)


def critical_path_length(steps: Sequence[StepSpec]) -> int:
    """Number of steps on the longest dependency chain (1 for independent steps); assumes no cycles.

    Unknown and self-dependencies are ignored; an empty plan has length 0.

    Raises:
        ValueError: The dependencies form a cycle, so no chain length exists.
    """
    graph = _dependency_graph(steps)
    order = _topological_order(graph)
    if order is None:
        raise ValueError("plan has a dependency cycle; check plan_issues() first")
    depth: dict[int, int] = {}
    for step_id in order:
        depth[step_id] = 1 + max((depth[dep] for dep in graph[step_id]), default=0)
    return max(depth.values(), default=0)


# Parsing helpers.


def _json_values(text: str) -> Iterator[Any]:
    """Yield JSON values found in the text: the whole text, fenced blocks, then embedded ones."""
    whole = _loads(text)
    if whole is not None:
        yield whole
    for match in _FENCE_RE.finditer(text):
        block = _loads(match.group(1).strip())
        if block is not None:
            yield block
    decoder = json.JSONDecoder()
    position = 0
    failures = 0
    while position < len(text) and failures < _MAX_JSON_FAILURES:
        if text[position] not in "[{":
            position += 1
            continue
        try:
            value, end = decoder.raw_decode(text, position)
        except (ValueError, RecursionError):
            failures += 1
            position += 1
            continue
        yield value
        # Values nested in one that parsed are not plans of their own; skip past it.
        position = end


def _loads(text: str) -> Any:
    """Decode JSON, or return None when the text is not JSON."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _first_json_error(text: str) -> str | None:
    """The decoder's complaint about the first JSON-looking part of the text, for the error."""
    starts = [index for index in (text.find("{"), text.find("[")) if index >= 0]
    if not starts:
        return None
    try:
        json.JSONDecoder().raw_decode(text, min(starts))
    except json.JSONDecodeError as error:
        return f"invalid JSON: {error}"
    except (ValueError, RecursionError):
        return "invalid JSON"
    return None


def _steps_from_json(value: Any) -> tuple[list[StepSpec], str]:
    """Normalised steps from decoded JSON, or no steps and the reason why."""
    items, reason = _step_items(value)
    if items is None:
        return [], reason
    if not items:
        return [], "plan has an empty list of steps"
    drafts = [draft for draft in (_draft(item) for item in items) if draft is not None]
    if not drafts:
        return [], "plan has no step with a non-empty description"
    return _with_unique_ids(drafts), ""


def _step_items(value: Any) -> tuple[list[Any] | None, str]:
    """Locate the list of raw steps in decoded JSON."""
    if isinstance(value, list):
        return value, ""
    if isinstance(value, Mapping):
        for steps in _values(value, ("steps",)):
            if isinstance(steps, list):
                return steps, ""
        for plan in _values(value, ("plan",)):
            if isinstance(plan, list | Mapping):
                return _step_items(plan)
        return None, "JSON object has no 'steps' list and no 'plan'"
    if isinstance(value, str):
        decoded = _loads(value.strip())
        if isinstance(decoded, list | Mapping):
            return _step_items(decoded)
    return None, f"JSON {type(value).__name__} is not a plan object or a list of steps"


def _draft(item: Any) -> _Draft | None:
    """One raw step as a draft, or None when it has no usable description."""
    if isinstance(item, str):
        text = item.strip()
        return _Draft(None, text, [], None, {}) if text else None
    if not isinstance(item, Mapping):
        return None
    texts = [text for text in map(_parse_text, _values(item, _DESCRIPTION_KEYS)) if text]
    # {"step": "2", "action": "..."}: a bare step number is an id, not a description.
    description = next((text for text in texts if _parse_id(text) is None), None)
    if description is None:
        return None
    step_id = _first_parsed(_values(item, (*_ID_KEYS, "step")), _parse_id)
    depends = _values(item, _DEPENDS_KEYS)
    depends_on = _parse_depends(depends[0]) if depends else []
    tool, tool_object_params = _parse_tool(next(iter(_values(item, _TOOL_KEYS)), None))
    tool_params = _first_parsed(_values(item, _PARAMS_KEYS), _parse_params) or tool_object_params
    return _Draft(step_id, description, depends_on, tool, tool_params or {})


def _values(item: Mapping[Any, Any], keys: Sequence[str]) -> list[Any]:
    """Values present under the keys, in key order; exact keys first, then case-insensitive."""
    folded: dict[str, Any] = {}
    for key, value in item.items():
        if isinstance(key, str):
            folded.setdefault(key.strip().lower(), value)
    found: list[Any] = []
    for key in keys:
        if key in item:
            found.append(item[key])
        elif key in folded:
            found.append(folded[key])
    return found


def _first_parsed(values: Iterable[Any], parse: Callable[[Any], _T | None]) -> _T | None:
    """The first value the parser accepts, so a bad alias does not hide a good one."""
    for value in values:
        parsed = parse(value)
        if parsed is not None:
            return parsed
    return None


def _parse_text(value: Any) -> str | None:
    """Stripped non-empty text, else None."""
    if isinstance(value, str):
        return value.strip() or None
    return None


def _parse_id(value: Any) -> int | None:
    """A step number from an int or a string like "2", "2.", "s2", "step_2" or "Step 2"."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float):
        return int(value) if value.is_integer() and value >= 0 else None
    if isinstance(value, str):
        match = _ID_RE.fullmatch(value.strip())
        if match:
            return int(match.group(1))
    return None


def _parse_depends(value: Any) -> list[int]:
    """Dependency ids from null, one value or a list of values; duplicates are dropped."""
    if value is None:
        return []
    items = value if isinstance(value, list | tuple) else [value]
    result: list[int] = []
    for item in items:
        for dep in _dependency_ids(item):
            if dep not in result:
                result.append(dep)
    return result


def _dependency_ids(item: Any) -> list[int]:
    """Ids named by one dependency entry, which may be a string listing several."""
    single = _parse_id(item)
    if single is not None:
        return [single]
    if not isinstance(item, str):
        return []
    parts = (_parse_id(part) for part in _DEPENDS_SPLIT_RE.split(item))
    return [part for part in parts if part is not None]


def _parse_tool(value: Any) -> tuple[str | None, dict[str, Any] | None]:
    """Tool name, plus parameters when the tool is an object like ``{"name", "arguments"}``."""
    if isinstance(value, str):
        return _parse_text(value), None
    if isinstance(value, Mapping):
        name = _first_parsed(_values(value, _TOOL_NAME_KEYS), _parse_text)
        params = _first_parsed(_values(value, _TOOL_OBJECT_PARAMS_KEYS), _parse_params)
        return name, params
    return None, None


def _parse_params(value: Any) -> dict[str, Any] | None:
    """Tool parameters from a dict or a JSON string of one; None when neither."""
    if isinstance(value, Mapping):
        return copy.deepcopy(dict(value))
    if isinstance(value, str):
        decoded = _loads(value.strip())
        if isinstance(decoded, dict):
            return decoded
    return None


def _with_unique_ids(drafts: list[_Draft]) -> list[StepSpec]:
    """Steps whose ids are unique: first use of an id keeps it, the rest get free ids."""
    taken: set[int] = set()
    kept: list[int | None] = []
    for draft in drafts:
        keep = draft.id if draft.id is not None and draft.id not in taken else None
        if keep is not None:
            taken.add(keep)
        kept.append(keep)
    steps: list[StepSpec] = []
    next_free = 1
    for draft, step_id in zip(drafts, kept, strict=True):
        if step_id is None:
            while next_free in taken:
                next_free += 1
            step_id = next_free
            taken.add(step_id)
        steps.append(
            _step(step_id, draft.description, draft.depends_on, draft.tool, draft.tool_params)
        )
    return steps


def _step(
    step_id: int,
    description: str,
    depends_on: list[int],
    tool: str | None,
    tool_params: dict[str, Any],
) -> StepSpec:
    """A normalised step dict."""
    return {
        "id": step_id,
        "description": description,
        "depends_on": list(depends_on),
        "tool": tool,
        "tool_params": tool_params,
    }


def _list_items(text: str) -> list[str]:
    """Item texts of a numbered or bulleted list; indented lines right after an item continue it."""
    items: list[str] = []
    continuing = False
    for line in text.splitlines():
        match = _LIST_ITEM_RE.fullmatch(line)
        if match:
            items.append(match.group("text").strip())
            continuing = True
        elif continuing and line.strip() and line[:1] in " \t":
            items[-1] = f"{items[-1]} {line.strip()}"
        else:
            continuing = False
    return [item for item in items if item]


def _snippet(text: str) -> str:
    """The start of the text as a one-line quoted string, for error messages."""
    head = text[:_SNIPPET_CHARS]
    return repr(head + "...") if len(text) > _SNIPPET_CHARS else repr(head)


# Graph helpers. Ids are merged when duplicated; unknown and self-dependencies are left out of
# the graph, because plan_issues reports them separately and they say nothing about order.


def _declared_dependencies(steps: Sequence[StepSpec]) -> dict[int, list[int]]:
    """Every dependency each step id declares, sorted and de-duplicated."""
    declared: dict[int, set[int]] = {}
    for step in steps:
        declared.setdefault(step["id"], set()).update(step.get("depends_on") or [])
    return {step_id: sorted(deps) for step_id, deps in declared.items()}


def _dependency_graph(steps: Sequence[StepSpec]) -> dict[int, list[int]]:
    """Step id -> sorted ids of the known, other steps it depends on."""
    declared = _declared_dependencies(steps)
    return {
        step_id: [dep for dep in deps if dep != step_id and dep in declared]
        for step_id, deps in declared.items()
    }


def _topological_order(graph: dict[int, list[int]]) -> list[int] | None:
    """Ids with dependencies first and ties broken by id; None when there is a cycle."""
    waiting = {step_id: len(deps) for step_id, deps in graph.items()}
    dependants: dict[int, list[int]] = {step_id: [] for step_id in graph}
    for step_id, deps in graph.items():
        for dep in deps:
            dependants[dep].append(step_id)
    ready = [step_id for step_id, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        step_id = heapq.heappop(ready)
        order.append(step_id)
        for dependant in dependants[step_id]:
            waiting[dependant] -= 1
            if waiting[dependant] == 0:
                heapq.heappush(ready, dependant)
    return order if len(order) == len(graph) else None


def _ordered_for_reading(steps: Sequence[StepSpec]) -> list[StepSpec]:
    """Steps in dependency order when that exists and ids are unique, else in id order."""
    by_id = {step["id"]: step for step in steps}
    if len(by_id) == len(steps):
        order = _topological_order(_dependency_graph(steps))
        if order is not None:
            return [by_id[step_id] for step_id in order]
    return sorted(steps, key=lambda step: step["id"])


NodeT = TypeVar("NodeT", int, str)


def strongly_connected(graph: Mapping[NodeT, Iterable[NodeT]]) -> list[list[NodeT]]:
    """Strongly connected components (Tarjan, iterative), each sorted, ordered by lowest node.

    Plans find their dependency cycles with it; the layout test, the package's import circles.
    """
    index: dict[NodeT, int] = {}
    low: dict[NodeT, int] = {}
    stack: list[NodeT] = []
    on_stack: set[NodeT] = set()
    components: list[list[NodeT]] = []

    def visit(node: NodeT) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)

    for root in sorted(graph):
        if root in index:
            continue
        visit(root)
        work: list[tuple[NodeT, Iterator[NodeT]]] = [(root, iter(graph[root]))]
        while work:
            node, children = work[-1]
            descended = False
            for child in children:
                if child not in index:
                    visit(child)
                    work.append((child, iter(graph[child])))
                    descended = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if descended:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[NodeT] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return sorted(components)


def _shortest_cycle(graph: dict[int, list[int]], group: list[int]) -> list[int]:
    """Shortest cycle through the group's lowest id, as ids ending where they start."""
    start = group[0]
    members = set(group)
    parent: dict[int, int] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for dep in graph[node]:
            if dep == start:
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [*reversed(path), start]
            if dep in members and dep not in parent:
                parent[dep] = node
                queue.append(dep)
    return [start, start]  # Unreachable for a real component of two or more steps.
