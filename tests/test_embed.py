"""The compiled graph inside other apps: as a parent graph's node, called from a node, in LCEL.

The examples of docs/guides/embedding.md are executed as they are written, so they cannot
drift from what the code does; the other tests look at what the examples only mention:
checkpoints, plan approval through the parent, streamed events and sync callers.
"""

from __future__ import annotations

import ast
import gc
import operator
import re
import threading
import weakref
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.runnables import RunnableLambda
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.store.memory import InMemoryStore
from langgraph.types import Command

from atlas_graph.config import load_config
from atlas_graph.demo import demo_config_path
from atlas_graph.graph import create_atlas_graph
from atlas_graph.state import AtlasInputError
from atlas_graph.storage.ledger import NAMESPACE
from atlas_graph.telemetry.events import is_event

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "guides" / "embedding.md"
COACH_TASK = "Add the latencies 120, 80 and 45 and report the total in ms."
ESCALATE_TASK = "Add 1200 and 340, multiply 12 by 9, then add both results."


def guide_examples() -> str:
    """The Python code blocks of the embedding guide, joined in order."""
    text = GUIDE.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert blocks, f"no python example in {GUIDE}"
    return "\n".join(blocks)


def demo_config(**teacher: Any) -> dict[str, Any]:
    """The offline demo config as a mapping, with teacher settings changed."""
    config = load_config(demo_config_path()).model_dump(by_alias=True, exclude_none=True)
    config["teacher"].update(teacher)
    return config


def atlas_graph(**teacher: Any) -> CompiledStateGraph[Any, Any, Any, Any]:
    return create_atlas_graph(demo_config(**teacher)).compile(name="atlas")


class Desk(TypedDict, total=False):
    task: str
    mode: str
    final_answer: str
    status: str
    lane: str
    notes: Annotated[list[str], operator.add]


def desk_graph(atlas: Any, store: InMemoryStore) -> CompiledStateGraph[Any, Any, Any, Any]:
    """A parent whose state shares keys with Atlas's input and output."""

    def report(state: Desk) -> dict[str, Any]:
        return {"notes": [f"{state['final_answer']} ({state['status']}, {state['lane']})"]}

    builder = StateGraph(Desk).add_node("atlas", atlas).add_node("report", report)
    builder.add_edge(START, "atlas").add_edge("atlas", "report")
    return builder.compile(checkpointer=InMemorySaver(), store=store)


async def test_guide_embedding_examples_run_as_written() -> None:
    source = guide_examples()
    # dont_inherit: the example runs as a reader's script would, without this module's
    # ``from __future__ import annotations``
    code = compile(
        source, str(GUIDE), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
    )
    namespace: dict[str, Any] = {"__name__": "guide_example"}
    pending = eval(code, namespace)  # top-level await makes it a coroutine
    if pending is not None:
        await pending
    assert namespace["desk_state"]["notes"] == ["391 (succeeded)"]
    assert namespace["chat_state"]["answer"] == "245 ms"
    assert namespace["one"] == "391 (succeeded)"
    assert namespace["many"] == ["42 (succeeded)", "108 (succeeded)"]
    assert namespace["awaited"] == "5 (succeeded)"


async def test_added_as_a_node_shares_keys_and_pauses_the_parent_for_approval() -> None:
    store = InMemoryStore()
    desk = desk_graph(atlas_graph(plan_approval="human"), store)
    thread: Any = {"configurable": {"thread_id": "desk-1"}}

    paused = await desk.ainvoke({"task": COACH_TASK, "mode": "coach"}, thread)
    assert paused["__interrupt__"][0].value["type"] == "plan_approval"
    snapshot = await desk.aget_state(thread, subgraphs=True)
    assert snapshot.next == ("atlas",)
    session = snapshot.tasks[0].state
    assert session is not None
    assert session.next == ("review",)
    assert session.values["plan_approval"]["status"] == "requested"
    assert session.config["configurable"]["checkpoint_ns"].startswith("atlas:")

    done = await desk.ainvoke(Command(resume={"action": "approve"}), thread)
    assert done["final_answer"] == "245 ms"
    assert done["notes"] == ["245 ms (succeeded, coach)"]
    # only keys the parent declares come back; the session's own stay in its checkpoints
    assert "plan" not in done and "steps" not in done
    # the parent's store holds the session's ledger record, addressed by thread and namespace
    namespace = session.config["configurable"]["checkpoint_ns"]
    assert session.values["session_id"] == f"desk-1/{namespace}"
    record = await store.aget(NAMESPACE, f"desk-1/{namespace}")
    assert record is not None
    assert (record.value["thread_id"], record.value["checkpoint_ns"]) == ("desk-1", namespace)
    assert record.value["status"] == "succeeded"
    assert record.value["plan_approval"]["status"] == "approved"


async def test_sessions_sharing_a_parent_thread_keep_their_own_ledger_records() -> None:
    """One Atlas session per chat turn: the turns share the thread, not the session id."""
    atlas = atlas_graph()
    store = InMemoryStore()

    class Chat(TypedDict, total=False):
        question: str
        answers: Annotated[list[str], operator.add]
        sessions: Annotated[list[str], operator.add]

    async def ask(state: Chat) -> dict[str, Any]:
        out = await atlas.ainvoke({"task": state["question"], "mode": "paired"})
        return {"answers": [out["final_answer"]], "sessions": [out["session_id"]]}

    chat = StateGraph(Chat).add_node("ask", ask).add_edge(START, "ask")
    graph = chat.compile(checkpointer=InMemorySaver(), store=store)
    thread: Any = {"configurable": {"thread_id": "chat-turns"}}
    await graph.ainvoke({"question": "Multiply 17 by 23."}, thread)
    state = await graph.ainvoke({"question": "Add 19 and 23."}, thread)

    assert state["answers"] == ["391", "42"]
    first, second = state["sessions"]
    assert first != second
    assert first.startswith("chat-turns/ask:") and second.startswith("chat-turns/ask:")
    records = {item.key: item.value for item in await store.asearch(NAMESPACE)}
    assert set(records) == {first, second}
    assert [records[key]["final_answer"] for key in (first, second)] == ["391", "42"]
    assert {record["thread_id"] for record in records.values()} == {"chat-turns"}


async def test_a_root_run_keeps_the_thread_id_as_its_session_id() -> None:
    store = InMemoryStore()
    graph = create_atlas_graph(demo_config()).compile(checkpointer=InMemorySaver(), store=store)
    out = await graph.ainvoke(
        {"task": "Add 19 and 23.", "mode": "auto"}, {"configurable": {"thread_id": "root-1"}}
    )
    assert out["session_id"] == "root-1"
    record = await store.aget(NAMESPACE, "root-1")
    assert record is not None
    assert (record.value["thread_id"], record.value["checkpoint_ns"]) == ("root-1", "")


async def test_called_inside_a_node_function_keeps_its_state_under_the_parent() -> None:
    atlas = atlas_graph(plan_approval="human")

    class Chat(TypedDict, total=False):
        question: str
        answer: str

    async def ask(state: Chat) -> dict[str, Any]:
        out = await atlas.ainvoke({"task": state["question"], "mode": "coach"})
        return {"answer": f"{out['final_answer']} ({out['status']})"}

    chat = StateGraph(Chat).add_node("ask", ask).add_edge(START, "ask")
    graph = chat.compile(checkpointer=InMemorySaver())
    thread: Any = {"configurable": {"thread_id": "chat-1"}}

    await graph.ainvoke({"question": COACH_TASK}, thread)
    snapshot = await graph.aget_state(thread, subgraphs=True)
    assert snapshot.next == ("ask",)
    session = snapshot.tasks[0].state
    assert session is not None
    assert session.values["plan_approval"]["status"] == "requested"
    assert session.values["lane"] == "coach"

    done = await graph.ainvoke(Command(resume={"action": "approve"}), thread)
    assert done == {"question": COACH_TASK, "answer": "245 ms (succeeded)"}


def test_sync_parent_resumes_the_approval_too() -> None:
    desk = desk_graph(atlas_graph(plan_approval="human"), InMemoryStore())
    thread: Any = {"configurable": {"thread_id": "desk-sync"}}
    paused = desk.invoke({"task": COACH_TASK, "mode": "coach"}, thread)
    assert paused["__interrupt__"][0].value["type"] == "plan_approval"
    rejected = desk.invoke(Command(resume={"action": "reject", "notes": "again"}), thread)
    assert rejected["__interrupt__"], "a rejected plan is redrafted and asked about again"
    done = desk.invoke(Command(resume={"action": "approve"}), thread)
    assert done["notes"] == ["245 ms (succeeded, coach)"]


async def test_events_stream_from_the_subgraph_with_their_namespace() -> None:
    desk = desk_graph(atlas_graph(), InMemoryStore())
    thread: Any = {"configurable": {"thread_id": "desk-stream"}}
    events: list[tuple[tuple[str, ...], str]] = []
    async for namespace, mode, chunk in desk.astream(
        {"task": "Multiply 17 by 23.", "mode": "paired"},
        thread,
        stream_mode=["custom", "updates"],
        subgraphs=True,
    ):
        if mode == "custom" and is_event(chunk):
            events.append((namespace, chunk["atlas_event"]))
    names = [name for _, name in events]
    assert names[0] == "session_started" and names[-1] == "session_finished"
    assert {"lane_decided", "validation_verdict", "final_answer"} <= set(names)
    assert all(len(ns) == 1 and ns[0].startswith("atlas:") for ns, _ in events)


def test_sync_stream_from_the_subgraph_carries_the_events() -> None:
    desk = desk_graph(atlas_graph(), InMemoryStore())
    thread: Any = {"configurable": {"thread_id": "desk-sync-stream"}}
    answers = [
        chunk["data"]["answer"]
        for _, mode, chunk in desk.stream(
            {"task": "Multiply 17 by 23.", "mode": "paired"},
            thread,
            stream_mode=["custom", "updates"],
            subgraphs=True,
        )
        if mode == "custom" and is_event(chunk) and chunk["atlas_event"] == "final_answer"
    ]
    assert answers == ["391"]


def lcel_chain(atlas: Any) -> Any:
    return (
        RunnableLambda(lambda item: {"task": item[0], "mode": item[1]})
        | atlas
        | RunnableLambda(lambda out: (out["final_answer"], out["status"], out["lane"]))
    )


ITEMS = [
    ("Multiply 17 by 23.", "paired"),
    (COACH_TASK, "coach"),
    (ESCALATE_TASK, "escalate"),
    ("Add 19 and 23.", "auto"),
]


@pytest.mark.parametrize("how", ["batch", "abatch"])
async def test_lcel_batch_runs_every_lane(how: str) -> None:
    chain = lcel_chain(atlas_graph())
    replies = chain.batch(ITEMS) if how == "batch" else await chain.abatch(ITEMS)
    answers = [answer for answer, _, _ in replies]
    assert answers[0] == "391"
    assert answers[1] == "245 ms"
    assert answers[2].startswith("1648")  # the escalate lane's synthesis of three steps
    assert answers[3] == "42"
    assert [(status, lane) for _, status, lane in replies] == [
        ("succeeded", "paired"),
        ("succeeded", "coach"),
        ("succeeded", "escalate"),
        ("succeeded", "auto"),
    ]


def test_a_graph_run_synchronously_is_freed_with_its_loop_thread() -> None:
    """The private loop keeps nothing of the runs it served: graph and thread go together."""
    graph = atlas_graph()
    before = set(threading.enumerate())
    assert graph.invoke({"task": "Add 19 and 23.", "mode": "auto"})["final_answer"] == "42"
    threads = [
        thread
        for thread in set(threading.enumerate()) - before
        if thread.name.startswith("atlas-graph-nodes-")
    ]
    assert len(threads) == 1, "a synchronous run starts the graph's loop thread"
    freed = weakref.ref(graph)
    del graph
    gc.collect()
    assert freed() is None
    for thread in threads:
        thread.join(timeout=30)  # a bound on the wait, not a speed check
    assert not any(thread.is_alive() for thread in threads)


def test_loop_thread_refuses_a_call_that_would_wait_on_itself() -> None:
    """A node may not call its own graph synchronously: it would wait on itself."""
    from atlas_graph.loop_thread import LoopThread

    loop = LoopThread("test-loop")

    async def inner() -> int:
        return 1

    async def outer() -> int:
        return loop.run(inner())

    with pytest.raises(RuntimeError, match="use the async API"):
        loop.run(outer())
    assert loop.run(inner()) == 1  # the loop still serves other callers


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ({"question": "Add 1 and 2."}, r"needs 'task', a non-empty string"),
        ({"task": "  "}, r"needs 'task', a non-empty string"),
        ({"task": 5}, r"needs 'task', a non-empty string"),
        ({"task": "Add 1 and 2.", "mode": "fast"}, r"unknown mode 'fast': expected one of auto"),
        ({"task": "Add 1 and 2.", "session_metadata": "x"}, r"'session_metadata' must be a map"),
    ],
)
async def test_input_it_cannot_run_is_refused_before_any_work(
    payload: dict[str, Any], problem: str
) -> None:
    agent_calls: list[Any] = []

    def agent(request: Any) -> str:
        agent_calls.append(request)
        return "3"

    graph = create_atlas_graph(demo_config(), agent=agent).compile()
    with pytest.raises(AtlasInputError, match=problem):
        await graph.ainvoke(payload)
    assert agent_calls == []


def test_a_parent_without_a_task_key_is_told_what_its_state_needs() -> None:
    class Wrong(TypedDict, total=False):
        question: str
        final_answer: str

    parent = StateGraph(Wrong).add_node("atlas", atlas_graph()).add_edge(START, "atlas").compile()
    with pytest.raises(AtlasInputError, match=r"the parent's state needs a 'task' key"):
        parent.invoke({"question": "Add 1 and 2."})
