"""The package's shape: no import circles, every node and route in graph.py and routes.py."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import atlas_graph
from atlas_graph import routes
from atlas_graph.demo import demo_config_path
from atlas_graph.graph import NODES, create_atlas_graph
from atlas_graph.plans import strongly_connected

PACKAGE = Path(atlas_graph.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, ast.Module]:
    return {
        _module_name(path): ast.parse(path.read_text(), str(path))
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def _runtime_modules() -> dict[str, ast.Module]:
    """The runtime's own modules: ``examples`` is user code that builds graphs of its own."""
    return {
        name: tree
        for name, tree in _modules().items()
        if not name.startswith("atlas_graph.examples")
    }


def import_graph() -> dict[str, set[str]]:
    """Module → the package modules it imports anywhere: top level, functions, TYPE_CHECKING."""
    modules = _modules()
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for name, tree in modules.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                base = node.module
                # ``from atlas_graph import prompts`` imports the module ``atlas_graph.prompts``
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                    for alias in node.names
                ]
            else:
                continue
            edges[name].update(t for t in targets if t in modules and t != name)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The import circles: strongly connected components of more than one module."""
    return [group for group in strongly_connected(edges) if len(group) > 1]


def test_no_import_circle_inside_the_package() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_circle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_lane_vocabulary_imports_nothing_of_the_package() -> None:
    edges = import_graph()
    assert edges["atlas_graph.lanes"] == set()
    assert "atlas_graph.config" not in edges["atlas_graph.state"]


def _calls(tree: ast.Module, name: str) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (getattr(node.func, "id", None) == name or getattr(node.func, "attr", None) == name)
    ]


def test_only_graph_py_adds_nodes_and_edges() -> None:
    for name, tree in _runtime_modules().items():
        if name == "atlas_graph.graph":
            continue
        added = [*_calls(tree, "add_edge"), *_calls(tree, "add_conditional_edges")]
        assert not added, f"{name} adds edges; every edge belongs in graph.py"


def test_only_routes_py_decides_where_to_go() -> None:
    """Nodes pass on what routes.py decides: no ``Send`` built and no node named elsewhere."""
    for name, tree in _runtime_modules().items():
        if name == "atlas_graph.routes":
            continue
        assert not _calls(tree, "Send"), f"{name} builds a Send; routes belong in routes.py"
        for call in _calls(tree, "Command"):
            for keyword in call.keywords:
                if keyword.arg == "goto":
                    literal = isinstance(keyword.value, ast.Constant | ast.List)
                    assert not literal, f"{name} names a node in goto; use routes.py"


def test_graph_py_adds_every_node() -> None:
    builder = create_atlas_graph(demo_config_path())
    assert tuple(builder.nodes) == NODES


@pytest.mark.parametrize(
    ("node", "route"),
    [
        ("probe", "after_probe"),
        ("review", "after_review"),
        ("dispatch", "after_dispatch"),
        ("execute", "after_execute"),
        ("validate", "after_validate"),
        ("guide", "after_guide"),
        ("synthesize", "after_synthesize"),
        ("reward", "after_reward"),
    ],
)
def test_destinations_come_from_the_route_types(node: str, route: str) -> None:
    builder = create_atlas_graph(demo_config_path())
    expected = routes.destinations(getattr(routes.Routes, route))
    if node in builder.branches:  # a session route: a conditional edge
        [spec] = builder.branches[node].values()
        assert spec.ends is not None and tuple(spec.ends) == expected
    else:  # a step route: Command(goto) / Send inside the node
        if node == "validate":  # a retry without a guidance call starts from validate
            expected += routes.destinations(routes.Routes.after_guide)
        assert builder.nodes[node].ends == expected
    assert expected  # every route goes somewhere


def test_destinations_read_literals_and_send_marks() -> None:
    assert routes.destinations(routes.Routes.after_probe) == ("plan", "execute")
    assert routes.destinations(routes.Routes.after_validate) == (
        "guide", "dispatch", "reward", "learn", "finalize",
    )  # fmt: skip
    assert routes.destinations(routes.Routes.after_reward) == ("arbiter", "learn", "finalize")


def test_the_step_baton_holds_what_routes_store_in_it() -> None:
    from typing import get_args, get_type_hints

    from atlas_graph.state import StepTask

    declared = set(get_args(get_type_hints(StepTask)["then"]))
    stored = {"dispatch", *get_args(routes.AfterAnswer)}
    assert stored <= declared


def test_the_one_private_langgraph_import_is_still_there() -> None:
    """instrument.py rebuilds LangGraph's node runnable; fail clearly if LangGraph moved it."""
    try:
        from langgraph._internal._runnable import RunnableCallable
    except ImportError as error:  # pragma: no cover - only on an incompatible LangGraph
        pytest.fail(
            f"this LangGraph has no langgraph._internal._runnable.RunnableCallable: {error}"
        )
    parameters = inspect.signature(RunnableCallable).parameters
    for name in ("func", "afunc", "name", "tags", "trace", "recurse"):
        assert name in parameters, f"RunnableCallable lost its {name!r} parameter"
