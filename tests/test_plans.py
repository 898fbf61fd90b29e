"""Tests for atlas_graph.plans: parsing messy student plans and scheduling them."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from atlas_graph.plans import (
    PlanParseError,
    critical_path_length,
    parse_plan,
    plan_issues,
    ready_step_ids,
    single_step_plan,
    stepwise_plan,
)

STEP_KEYS = {"id", "description", "depends_on", "tool", "tool_params"}


def step(
    step_id: int,
    description: str = "",
    depends_on: list[int] | None = None,
    tool: str | None = None,
    tool_params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A normalised step; the description defaults to "step <id>"."""
    return {
        "id": step_id,
        "description": description or f"step {step_id}",
        "depends_on": depends_on or [],
        "tool": tool,
        "tool_params": tool_params or {},
    }


def graph(edges: dict[int, list[int]]) -> list[dict[str, Any]]:
    """Steps from {id: depends_on}."""
    return [step(step_id, depends_on=deps) for step_id, deps in edges.items()]


def ids_and_deps(steps: list[dict[str, Any]]) -> list[tuple[int, list[int]]]:
    return [(s["id"], s["depends_on"]) for s in steps]


CANONICAL = {
    "steps": [
        {"id": 1, "description": "Search", "depends_on": [], "tool": "web", "tool_params": {}},
        {"id": 2, "description": "Summarise", "depends_on": [1], "tool": None, "tool_params": {}},
    ]
}
CANONICAL_JSON = json.dumps(CANONICAL)


# parse_plan: where the JSON is.


def test_canonical_json_round_trips() -> None:
    assert parse_plan(CANONICAL_JSON) == CANONICAL["steps"]


@pytest.mark.parametrize(
    "text",
    [
        f"```json\n{CANONICAL_JSON}\n```",
        f"```JSON\n{CANONICAL_JSON}\n```",
        f"```\n{CANONICAL_JSON}\n```",
        f"```{CANONICAL_JSON}```",
        f"Here is my plan:\n```json\n{json.dumps(CANONICAL, indent=2)}\n```\nLet me know!",
    ],
    ids=["json-fence", "upper-fence", "bare-fence", "inline-fence", "fence-with-prose"],
)
def test_fenced_json(text: str) -> None:
    assert parse_plan(text) == CANONICAL["steps"]


@pytest.mark.parametrize(
    "text",
    [
        f"Sure! The plan is {CANONICAL_JSON} and that should do it.",
        f"{CANONICAL_JSON}\n\nI hope this helps.",
        f"Thinking... (see [note]) {{draft}} first.\n{CANONICAL_JSON}",
        f"Options: [1, 2] were considered.\n{CANONICAL_JSON}",
        f'Context {{"answer": 42, "sources": ["a", "b"]}} then {CANONICAL_JSON}',
    ],
    ids=["inline", "prose-after", "broken-brackets-before", "number-list-before", "object-before"],
)
def test_json_inside_prose(text: str) -> None:
    assert parse_plan(text) == CANONICAL["steps"]


def test_fenced_block_wins_over_json_in_the_prose_before_it() -> None:
    text = f'I weighed ["guess", "check"] but chose:\n```json\n{CANONICAL_JSON}\n```'
    assert parse_plan(text) == CANONICAL["steps"]


def test_bare_list_of_steps() -> None:
    steps = parse_plan('[{"id": 1, "description": "a"}, {"id": 2, "description": "b"}]')
    assert ids_and_deps(steps) == [(1, []), (2, [])]
    assert [s["description"] for s in steps] == ["a", "b"]


def test_plan_key_holding_list_or_object() -> None:
    as_list = parse_plan('{"plan": [{"id": 1, "description": "a"}]}')
    as_object = parse_plan('{"plan": {"steps": [{"id": 1, "description": "a"}]}}')
    assert as_list == as_object == [step(1, "a")]


def test_keys_are_case_insensitive() -> None:
    steps = parse_plan('{"Steps": [{"ID": 3, "Description": "a", "Depends_On": [], "Tool": "t"}]}')
    assert steps == [step(3, "a", tool="t")]


def test_double_encoded_json_string() -> None:
    assert parse_plan(json.dumps(CANONICAL_JSON)) == CANONICAL["steps"]


def test_dict_and_list_input_are_not_mutated() -> None:
    raw = copy.deepcopy(CANONICAL)
    raw["steps"][0]["tool_params"] = {"q": ["x"]}
    before = copy.deepcopy(raw)
    steps = parse_plan(raw)
    steps[0]["tool_params"]["q"].append("y")
    steps[1]["depends_on"].append(99)
    assert raw == before
    assert parse_plan(raw["steps"])[0]["tool_params"] == {"q": ["x"]}


def test_output_is_plain_json() -> None:
    steps = parse_plan(f"```json\n{CANONICAL_JSON}\n```")
    assert all(type(s) is dict and set(s) == STEP_KEYS for s in steps)
    assert json.loads(json.dumps(steps)) == steps


# parse_plan: step shapes.


def test_string_steps() -> None:
    steps = parse_plan('{"steps": ["  Search the web ", "Summarise"]}')
    assert steps == [step(1, "Search the web"), step(2, "Summarise")]


@pytest.mark.parametrize(
    ("raw_id", "expected"),
    [
        (4, 4),
        ("4", 4),
        ("step_4", 4),
        ("Step 4", 4),
        ("STEP-4", 4),
        ("s4", 4),
        ("4.", 4),
        ("#4", 4),
        (" 4) ", 4),
        (4.0, 4),
    ],
)
def test_id_forms(raw_id: Any, expected: int) -> None:
    assert parse_plan([{"id": raw_id, "description": "x"}])[0]["id"] == expected


@pytest.mark.parametrize("raw_id", [None, "", "first", True, -3, 2.5, "step four"])
def test_unusable_id_counts_as_missing(raw_id: Any) -> None:
    steps = parse_plan([{"id": 1, "description": "a"}, {"id": raw_id, "description": "b"}])
    assert [s["id"] for s in steps] == [1, 2]


def test_missing_ids_are_numbered_from_one_skipping_taken_ids() -> None:
    steps = parse_plan(
        [
            {"description": "a"},
            {"id": 2, "description": "b"},
            {"description": "c"},
            {"id": "step_1", "description": "d"},
            {"description": "e"},
        ]
    )
    assert [(s["id"], s["description"]) for s in steps] == [
        (3, "a"),
        (2, "b"),
        (4, "c"),
        (1, "d"),
        (5, "e"),
    ]


def test_missing_ids_let_numeric_dependencies_refer_to_positions() -> None:
    steps = parse_plan([{"task": "a"}, {"task": "b", "depends_on": [1]}])
    assert ids_and_deps(steps) == [(1, []), (2, [1])]


def test_duplicate_ids_get_next_free_ids() -> None:
    steps = parse_plan(
        [
            {"id": 1, "description": "a"},
            {"id": 1, "description": "b"},
            {"id": 3, "description": "c"},
            {"id": "3", "description": "d"},
            {"id": 2, "description": "e", "depends_on": [1]},
        ]
    )
    assert [(s["id"], s["description"]) for s in steps] == [
        (1, "a"),
        (4, "b"),
        (3, "c"),
        (5, "d"),
        (2, "e"),
    ]
    assert len({s["id"] for s in steps}) == len(steps)
    assert steps[-1]["depends_on"] == [1]


@pytest.mark.parametrize(
    ("depends", "expected"),
    [
        (None, []),
        ([], []),
        (1, [1]),
        ("step_1", [1]),
        ("", []),
        ("none", []),
        ([1, "2", "step_3", "Step 1", "s2", "3."], [1, 2, 3]),
        ([None, "the search step", 2], [2]),
        ("1, 3", [1, 3]),
        ("step 1 and step 3", [1, 3]),
    ],
)
def test_depends_on_forms(depends: Any, expected: list[int]) -> None:
    raw = [{"id": i, "description": f"s{i}"} for i in (1, 2, 3)]
    raw.append({"id": 4, "description": "last", "depends_on": depends})
    assert parse_plan(raw)[-1]["depends_on"] == expected


def test_depends_on_missing() -> None:
    assert parse_plan([{"id": 1, "description": "a"}])[0]["depends_on"] == []


@pytest.mark.parametrize("key", ["depends_on", "dependencies", "deps"])
def test_depends_on_aliases(key: str) -> None:
    steps = parse_plan([{"id": 1, "description": "a"}, {"id": 2, "description": "b", key: ["1"]}])
    assert steps[1]["depends_on"] == [1]


@pytest.mark.parametrize("key", ["description", "task", "title", "step", "text", "action"])
def test_description_aliases(key: str) -> None:
    assert parse_plan([{"id": 1, key: "  Do the thing  "}])[0]["description"] == "Do the thing"


def test_first_non_empty_description_alias_wins() -> None:
    steps = parse_plan([{"id": 1, "description": "  ", "title": "Real", "text": "Other"}])
    assert steps[0]["description"] == "Real"


def test_step_key_holding_a_number_is_the_id() -> None:
    steps = parse_plan([{"step": "Step 7", "action": "Search"}, {"step": 2, "task": "Sum"}])
    assert [(s["id"], s["description"]) for s in steps] == [(7, "Search"), (2, "Sum")]


def test_tool_missing_empty_and_stripped() -> None:
    steps = parse_plan(
        [
            {"id": 1, "description": "a"},
            {"id": 2, "description": "b", "tool": "   "},
            {"id": 3, "description": "c", "tool": None},
            {"id": 4, "description": "d", "tool": " web_search "},
            {"id": 5, "description": "e", "tool": 42},
        ]
    )
    assert [s["tool"] for s in steps] == [None, None, None, "web_search", None]


def test_tool_given_as_function_call_object() -> None:
    raw = {"id": 1, "description": "a", "tool": {"name": "search", "arguments": '{"q": "x"}'}}
    assert parse_plan([raw]) == [step(1, "a", tool="search", tool_params={"q": "x"})]


@pytest.mark.parametrize("key", ["tool_params", "tool_args", "arguments", "params"])
def test_tool_params_aliases(key: str) -> None:
    steps = parse_plan([{"id": 1, "description": "a", "tool": "t", key: {"q": 1}}])
    assert steps[0]["tool_params"] == {"q": 1}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ('{"query": "llm", "limit": 3}', {"query": "llm", "limit": 3}),
        ("  {}  ", {}),
        ('["not", "a", "dict"]', {}),
        ("query=llm", {}),
        ("", {}),
        (None, {}),
        ([1, 2], {}),
        (7, {}),
    ],
)
def test_tool_params_json_string_or_fallback(params: Any, expected: dict[str, Any]) -> None:
    steps = parse_plan([{"id": 1, "description": "a", "tool_params": params}])
    assert steps[0]["tool_params"] == expected


def test_tool_params_in_json_text_as_string() -> None:
    text = json.dumps({"steps": [{"id": 1, "task": "a", "tool_args": json.dumps({"k": "v"})}]})
    assert parse_plan(text)[0]["tool_params"] == {"k": "v"}


def test_empty_descriptions_and_junk_items_are_dropped() -> None:
    steps = parse_plan(
        [
            {"id": 1, "description": "   "},
            "",
            "  \n ",
            {"id": 2, "description": None},
            {"id": 3},
            42,
            None,
            ["nested"],
            {"id": 4, "description": " keep "},
        ]
    )
    assert steps == [step(4, "keep")]


# parse_plan: lists written as text.


def test_numbered_text_list() -> None:
    steps = parse_plan("1. Search the web\n2. Summarise the results\n3) Write the answer")
    assert steps == [
        step(1, "Search the web"),
        step(2, "Summarise the results"),
        step(3, "Write the answer"),
    ]


def test_bulleted_text_list_with_prose_and_continuations() -> None:
    text = (
        "Here is my plan:\n\n"
        "- Search the web\n"
        "  for recent papers\n"
        "* Read the top three\n"
        "• Summarise\n"
        "- [ ] Write the answer\n\n"
        "Let me know if that works."
    )
    assert [s["description"] for s in parse_plan(text)] == [
        "Search the web for recent papers",
        "Read the top three",
        "Summarise",
        "Write the answer",
    ]


def test_step_labelled_text_list_is_independent_steps() -> None:
    steps = parse_plan("Step 1: Search\nStep 2: Summarise, using step 1")
    assert ids_and_deps(steps) == [(1, []), (2, [])]
    assert steps[1]["description"] == "Summarise, using step 1"


def test_text_list_containing_a_non_plan_json_value() -> None:
    steps = parse_plan('1. Call the API with {"limit": 5}\n2. Summarise')
    assert [s["description"] for s in steps] == ['Call the API with {"limit": 5}', "Summarise"]


# parse_plan: failures.


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   \n\t ",
        "I am not able to make a plan for this.",
        "The answer is 42.",
        "[]",
        '{"steps": []}',
        '{"plan": []}',
        '{"answer": "42"}',
        "42",
        '"just a string"',
        '{"steps": ["", "   ", {"description": ""}]}',
        '{"steps": [{"id": 1, "description": "a",}]}',
        '```json\n{"steps": [\n```',
        [],
        {},
        {"steps": None},
        {"steps": [{"id": 1}]},
    ],
)
def test_unusable_input_raises_plan_parse_error(raw: Any) -> None:
    with pytest.raises(PlanParseError) as caught:
        parse_plan(raw)
    message = str(caught.value)
    assert message
    assert "\n" not in message


def test_plan_parse_error_is_a_value_error_and_says_why() -> None:
    assert issubclass(PlanParseError, ValueError)
    with pytest.raises(PlanParseError, match="empty list of steps"):
        parse_plan("[]")
    with pytest.raises(PlanParseError, match="no step with a non-empty description"):
        parse_plan('{"steps": [{"description": "  "}]}')
    with pytest.raises(PlanParseError, match="invalid JSON"):
        parse_plan('{"steps": [{"id": 1,}]}')
    with pytest.raises(PlanParseError, match="'I cannot plan this'"):
        parse_plan("I cannot plan this")


def test_wrong_type_raises_plan_parse_error() -> None:
    with pytest.raises(PlanParseError, match="int"):
        parse_plan(42)  # type: ignore[arg-type]


# plan_issues.


def test_plan_issues_empty_for_a_good_plan() -> None:
    assert plan_issues(graph({1: [], 2: [1], 3: [1], 4: [2, 3]})) == []
    assert plan_issues([]) == []


def test_unknown_dependency() -> None:
    assert plan_issues(graph({1: [], 3: [1, 7]})) == ["step 3 depends on unknown step 7"]


def test_self_dependency() -> None:
    assert plan_issues(graph({1: [], 2: [2, 1]})) == ["step 2 depends on itself"]


def test_two_cycle() -> None:
    assert plan_issues(graph({1: [2], 2: [1], 3: []})) == ["dependency cycle: 1 -> 2 -> 1"]


def test_three_cycle_reads_as_depends_on() -> None:
    # 1 depends on 2, 2 on 3, 3 on 1.
    assert plan_issues(graph({1: [2], 2: [3], 3: [1]})) == ["dependency cycle: 1 -> 2 -> 3 -> 1"]
    # 1 depends on 3, 3 on 2, 2 on 1.
    assert plan_issues(graph({1: [3], 2: [1], 3: [2]})) == ["dependency cycle: 1 -> 3 -> 2 -> 1"]


def test_cycle_among_other_steps_names_only_the_cycle() -> None:
    issues = plan_issues(graph({1: [], 2: [1, 4], 3: [2], 4: [3], 5: [4]}))
    assert issues == ["dependency cycle: 2 -> 4 -> 3 -> 2"]


def test_tangled_cycles_name_the_whole_group() -> None:
    issues = plan_issues(graph({1: [2, 3], 2: [1], 3: [1]}))
    assert issues == ["dependency cycle: 1 -> 2 -> 1 (steps 1, 2, 3 depend on each other)"]


def test_issues_come_in_a_deterministic_order() -> None:
    edges = {6: [5, 1], 5: [6], 4: [9, 4], 3: [2], 2: [1], 1: [3]}
    expected = [
        "step 4 depends on itself",
        "step 4 depends on unknown step 9",
        "dependency cycle: 1 -> 3 -> 2 -> 1",
        "dependency cycle: 5 -> 6 -> 5",
    ]
    assert plan_issues(graph(edges)) == expected
    assert plan_issues(list(reversed(graph(edges)))) == expected


def test_duplicate_ids_are_reported() -> None:
    assert plan_issues([step(1), step(1), step(2, depends_on=[1])]) == ["duplicate step id 1"]


def test_parsed_plan_issues_end_to_end() -> None:
    text = (
        '```json\n{"steps": [{"id": "s1", "task": "a", "deps": "s2"},'
        ' {"id": "s2", "task": "b", "deps": ["step_1"]}]}\n```'
    )
    assert plan_issues(parse_plan(text)) == ["dependency cycle: 1 -> 2 -> 1"]


# single_step_plan and stepwise_plan.


def test_single_step_plan_without_steps() -> None:
    expected = {"steps": [step(1, "Write a haiku")], "execution_mode": "single_shot"}
    assert single_step_plan("  Write a haiku ") == expected
    assert single_step_plan("Write a haiku", []) == expected


def test_single_step_plan_lists_steps_in_dependency_order() -> None:
    steps = [
        step(1, "Write the report", depends_on=[3, 4]),
        step(2, "Collect sources"),
        step(3, "Read sources", depends_on=[2]),
        step(4, "Pick a title", tool="search", tool_params={"q": "x"}),
    ]
    plan = single_step_plan("Report on X", steps)
    assert plan["execution_mode"] == "single_shot"
    assert len(plan["steps"]) == 1
    only = plan["steps"][0]
    assert only["id"] == 1
    assert only["depends_on"] == []
    assert only["tool"] is None
    assert only["tool_params"] == {}
    assert only["description"] == (
        "Report on X\n\nWork through these steps:\n"
        "1. Collect sources\n2. Read sources\n3. Pick a title\n4. Write the report"
    )


def test_single_step_plan_ignores_unknown_and_self_dependencies_for_order() -> None:
    steps = [step(2, "b", depends_on=[2, 9]), step(1, "a", depends_on=[2])]
    description = single_step_plan("T", steps)["steps"][0]["description"]
    assert description.endswith("\n1. b\n2. a")


def test_single_step_plan_falls_back_to_id_order_on_cycles() -> None:
    steps = [step(3, "c"), step(2, "b", depends_on=[1]), step(1, "a", depends_on=[2])]
    description = single_step_plan("T", steps)["steps"][0]["description"]
    assert description == "T\n\nWork through these steps:\n1. a\n2. b\n3. c"


def test_single_step_plan_does_not_mutate_steps() -> None:
    steps = graph({1: [], 2: [1]})
    before = copy.deepcopy(steps)
    single_step_plan("T", steps)
    assert steps == before


def test_stepwise_plan() -> None:
    steps = graph({1: [], 2: [1]})
    plan = stepwise_plan(steps)
    assert plan == {"steps": steps, "execution_mode": "stepwise"}
    plan["steps"][1]["depends_on"].append(5)
    assert steps[1]["depends_on"] == [1]


# ready_step_ids.

DIAMOND = graph({4: [2, 3], 3: [1], 2: [1], 1: []})


@pytest.mark.parametrize(
    ("finished", "started", "expected"),
    [
        (set(), set(), [1]),
        (set(), {1}, []),
        ({1}, {1}, [2, 3]),
        ({1}, {1, 3}, [2]),
        ({1, 2}, {1, 2, 3}, []),
        ({1, 2, 3}, {1, 2, 3}, [4]),
        ({1, 2, 3, 4}, {1, 2, 3, 4}, []),
        ({1}, set(), [2, 3]),
    ],
)
def test_ready_step_ids_diamond(finished: set[int], started: set[int], expected: list[int]) -> None:
    assert ready_step_ids(DIAMOND, finished, started) == expected


def test_ready_step_ids_independent_steps_in_id_order() -> None:
    assert ready_step_ids(graph({3: [], 1: [], 2: []}), set(), set()) == [1, 2, 3]


def test_ready_step_ids_never_releases_unknown_or_self_dependencies() -> None:
    steps = graph({1: [], 2: [9], 3: [3]})
    assert ready_step_ids(steps, {1}, {1}) == []


# critical_path_length.


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        ({}, 0),
        ({1: []}, 1),
        ({1: [], 2: [], 3: []}, 1),
        ({1: [], 2: [1], 3: [2]}, 3),
        ({4: [2, 3], 3: [1], 2: [1], 1: []}, 3),
        ({1: [], 2: [1], 3: [], 4: [3], 5: [4], 6: [2, 5]}, 4),
        ({1: [9], 2: [2, 1]}, 2),
    ],
    ids=["empty", "one", "independent", "chain", "diamond", "uneven-join", "ignores-bad-deps"],
)
def test_critical_path_length(edges: dict[int, list[int]], expected: int) -> None:
    assert critical_path_length(graph(edges)) == expected


def test_critical_path_length_rejects_cycles() -> None:
    with pytest.raises(ValueError, match="cycle"):
        critical_path_length(graph({1: [2], 2: [1]}))
