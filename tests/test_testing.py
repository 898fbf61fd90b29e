"""Tests for the scripted fakes in ``atlas_graph.testing``."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any, TypedDict

import pytest
from langchain_core.exceptions import OutputParserException
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph
from pydantic import BaseModel
from typing_extensions import TypedDict as ExtTypedDict

from atlas_graph.testing import (
    ScriptedAgent,
    ScriptedChatModel,
    ScriptExhaustedError,
    scripted_json,
)


class Answer(BaseModel):
    """Pydantic schema used by structured-output tests."""

    answer: str
    score: int


class AnswerDict(TypedDict):
    """TypedDict schema used by structured-output tests."""

    answer: str
    score: int


class StrictAnswerDict(ExtTypedDict):
    """typing_extensions TypedDict: pydantic fully validates it on every Python version."""

    answer: str
    score: int


ANSWER_JSON_SCHEMA: dict[str, Any] = {
    "title": "AnswerSchema",
    "type": "object",
    "properties": {"answer": {"type": "string"}, "score": {"type": "integer"}},
    "required": ["answer", "score"],
}


@tool
def get_weather(city: str) -> str:
    """Return the weather for a city."""
    return f"sunny in {city}"


class Lookup(BaseModel):
    """Look something up."""

    query: str


# ---------------------------------------------------------------------------------------------
# ScriptedChatModel: basics
# ---------------------------------------------------------------------------------------------


def test_responses_are_returned_in_order_sync_and_async() -> None:
    model = ScriptedChatModel(responses=["first", "second", "third"])
    assert model.invoke("a").content == "first"
    assert asyncio.run(model.ainvoke("b")).content == "second"
    assert model.invoke([HumanMessage("c")]).content == "third"
    assert model.call_count == 3


def test_responder_takes_priority_over_responses() -> None:
    seen: list[list[BaseMessage]] = []

    def responder(messages: list[BaseMessage]) -> str:
        seen.append(messages)
        return f"echo: {messages[-1].content}"

    model = ScriptedChatModel(responses=["ignored"], responder=responder)
    assert model.invoke("ping").content == "echo: ping"
    assert model.invoke("pong").content == "echo: pong"
    assert [m[-1].content for m in seen] == ["ping", "pong"]


def test_exhaustion_error_names_model_and_count() -> None:
    model = ScriptedChatModel(name="planner", responses=["one", "two"])
    model.invoke("x")
    model.invoke("y")
    with pytest.raises(ScriptExhaustedError) as info:
        model.invoke("z")
    assert isinstance(info.value, RuntimeError)
    message = str(info.value)
    assert "'planner'" in message
    assert "served 2 call(s)" in message


def test_empty_script_raises_even_with_repeat_last() -> None:
    model = ScriptedChatModel(repeat_last=True)
    with pytest.raises(ScriptExhaustedError, match="served 0 call"):
        model.invoke("x")


def test_repeat_last_keeps_returning_last_item() -> None:
    model = ScriptedChatModel(responses=["a", "b"], repeat_last=True)
    contents = [model.invoke(str(i)).content for i in range(5)]
    assert contents == ["a", "b", "b", "b", "b"]


def test_exception_items_are_raised_then_script_continues() -> None:
    model = ScriptedChatModel(responses=[TimeoutError("provider timed out"), "recovered"])
    with pytest.raises(TimeoutError, match="provider timed out"):
        asyncio.run(model.ainvoke("x"))
    assert asyncio.run(model.ainvoke("x")).content == "recovered"
    assert model.call_count == 2


def test_callable_items_receive_messages() -> None:
    model = ScriptedChatModel(responses=[lambda msgs: f"{len(msgs)} message(s)"])
    result = model.invoke([HumanMessage("a"), HumanMessage("b")])
    assert result.content == "2 message(s)"


def test_dict_and_pydantic_items_become_json_text() -> None:
    model = ScriptedChatModel(responses=[{"k": 1}, Answer(answer="x", score=2)])
    assert json.loads(model.invoke("a").text) == {"k": 1}
    assert json.loads(model.invoke("b").text) == {"answer": "x", "score": 2}


def test_unsupported_item_type_is_a_clear_type_error() -> None:
    model = ScriptedChatModel(responses=[42])
    with pytest.raises(TypeError, match="unsupported response item of type int"):
        model.invoke("x")


def test_usage_metadata_on_every_message() -> None:
    model = ScriptedChatModel(
        responses=["a", AIMessage(content="b")], usage_per_call=(7, 3), model_name="fake-1"
    )
    for _ in range(2):
        result = model.invoke("x")
        assert result.usage_metadata is not None
        assert result.usage_metadata["input_tokens"] == 7
        assert result.usage_metadata["output_tokens"] == 3
        assert result.usage_metadata["total_tokens"] == 10
        assert result.response_metadata["model_name"] == "fake-1"


def test_existing_usage_on_scripted_message_is_kept() -> None:
    usage = {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}
    model = ScriptedChatModel(responses=[AIMessage(content="x", usage_metadata=usage)])
    assert model.invoke("x").usage_metadata == usage


def test_unknown_constructor_argument_is_rejected() -> None:
    with pytest.raises(ValueError):
        ScriptedChatModel(respones=["typo"])  # type: ignore[call-arg]


def test_state_is_per_instance() -> None:
    first = ScriptedChatModel(responses=["a"])
    second = ScriptedChatModel(responses=["b"])
    assert first.invoke("x").content == "a"
    assert second.invoke("x").content == "b"
    assert first.call_count == 1
    assert second.call_count == 1
    assert first.calls is not second.calls


def test_assert_complete_names_the_model_and_the_responses_left() -> None:
    model = ScriptedChatModel(
        responses=["first", scripted_json(valid=True), "third"], name="teacher"
    )
    model.invoke("a")
    with pytest.raises(AssertionError) as info:
        model.assert_complete()
    message = str(info.value)
    assert "ScriptedChatModel 'teacher' has 2 of 3 scripted response(s) unused" in message
    assert "after 1 call(s)" in message
    assert "the next one is '{\"valid\": true}'" in message
    assert "\n" not in message


def test_assert_complete_passes_once_the_script_is_used_up() -> None:
    model = ScriptedChatModel(responses=["first", RuntimeError("provider down")])
    model.invoke("a")
    with pytest.raises(RuntimeError):
        model.invoke("b")  # a scripted failure is used up too
    model.assert_complete()
    ScriptedChatModel().assert_complete()  # nothing scripted, nothing left


def test_assert_complete_with_repeat_last_and_a_responder() -> None:
    repeating = ScriptedChatModel(responses=["a", "b"], repeat_last=True)
    repeating.invoke("x")
    with pytest.raises(AssertionError, match="1 of 2"):
        repeating.assert_complete()
    for _ in range(3):
        repeating.invoke("x")
    repeating.assert_complete()

    answered = ScriptedChatModel(responder=lambda messages: "computed")
    answered.invoke("x")
    answered.assert_complete()
    ignored = ScriptedChatModel(responses=["never"], responder=lambda messages: "computed")
    ignored.invoke("x")
    with pytest.raises(AssertionError, match="1 of 1 scripted response"):
        ignored.assert_complete()  # the responder answered instead of the script


# ---------------------------------------------------------------------------------------------
# ScriptedChatModel: call record, tools
# ---------------------------------------------------------------------------------------------


def test_calls_record_messages_tools_and_kwargs() -> None:
    model = ScriptedChatModel(responses=["plain", "with tools"])
    model.invoke("hello", stop=["END"])
    bound = model.bind_tools([get_weather, Lookup], tool_choice="any")
    bound.invoke("weather?")

    plain, with_tools = model.calls
    assert [m.content for m in plain["messages"]] == ["hello"]
    assert plain["tools"] == []
    assert plain["tool_choice"] is None
    assert plain["schema"] is None
    assert plain["kwargs"] == {"stop": ["END"]}

    assert with_tools["tools"] == ["get_weather", "Lookup"]
    assert with_tools["tool_choice"] == "any"
    assert with_tools["messages"][0].content == "weather?"


def test_scripted_tool_calls_pass_through_unchanged() -> None:
    tool_calls = [
        {"name": "get_weather", "args": {"city": "Oslo"}, "id": "call_1", "type": "tool_call"}
    ]
    scripted = AIMessage(content="", tool_calls=tool_calls)
    model = ScriptedChatModel(responses=[scripted])
    result = model.bind_tools([get_weather]).invoke("weather in Oslo?")
    assert isinstance(result, AIMessage)
    assert result.tool_calls == tool_calls
    assert result.content == ""


def test_repeated_scripted_message_is_not_mutated() -> None:
    scripted = AIMessage(content="same")
    model = ScriptedChatModel(responses=[scripted], repeat_last=True)
    first = model.invoke("a")
    second = model.invoke("b")
    assert scripted.usage_metadata is None
    assert scripted.id is None
    assert first is not second


# ---------------------------------------------------------------------------------------------
# ScriptedChatModel: structured output
# ---------------------------------------------------------------------------------------------


def test_structured_output_pydantic() -> None:
    model = ScriptedChatModel(responses=[scripted_json(answer="yes", score=3)])
    result = model.with_structured_output(Answer).invoke("q")
    assert result == Answer(answer="yes", score=3)
    assert model.calls[0]["schema"] == "Answer"


def test_structured_output_typeddict() -> None:
    model = ScriptedChatModel(responses=[{"answer": "yes", "score": 4}])
    result = asyncio.run(model.with_structured_output(AnswerDict).ainvoke("q"))
    assert result == {"answer": "yes", "score": 4}
    assert isinstance(result, dict)
    assert model.calls[0]["schema"] == "AnswerDict"


def test_structured_output_typeddict_missing_key() -> None:
    model = ScriptedChatModel(responses=[scripted_json(answer="yes")])
    with pytest.raises(OutputParserException, match="score"):
        model.with_structured_output(AnswerDict).invoke("q")


def test_structured_output_typing_extensions_typeddict_validates_types() -> None:
    model = ScriptedChatModel(responses=[scripted_json(answer="a", score="7"), '{"score": []}'])
    structured = model.with_structured_output(StrictAnswerDict)
    assert structured.invoke("q") == {"answer": "a", "score": 7}
    with pytest.raises(OutputParserException, match="StrictAnswerDict"):
        structured.invoke("q")


def test_structured_output_json_schema_dict() -> None:
    model = ScriptedChatModel(responses=[scripted_json(answer="yes", score=5)])
    result = model.with_structured_output(ANSWER_JSON_SCHEMA).invoke("q")
    assert result == {"answer": "yes", "score": 5}
    assert model.calls[0]["schema"] == "AnswerSchema"


def test_structured_output_dict_schema_missing_required_key() -> None:
    model = ScriptedChatModel(responses=[scripted_json(answer="yes")])
    with pytest.raises(OutputParserException, match="score"):
        model.with_structured_output(ANSWER_JSON_SCHEMA).invoke("q")


def test_structured_output_fenced_json() -> None:
    text = 'Sure, here it is:\n```json\n{"answer": "fenced", "score": 1}\n```\nDone.'
    model = ScriptedChatModel(responses=[text])
    assert model.with_structured_output(Answer).invoke("q") == Answer(answer="fenced", score=1)


def test_structured_output_json_in_prose() -> None:
    text = 'I think {"answer": "prose", "score": 2} is right. {not json}'
    model = ScriptedChatModel(responses=[text])
    assert model.with_structured_output(Answer).invoke("q") == Answer(answer="prose", score=2)


def test_structured_output_from_tool_call_args() -> None:
    scripted = AIMessage(
        content="",
        tool_calls=[{"name": "Answer", "args": {"answer": "tool", "score": 9}, "id": "c1"}],
    )
    model = ScriptedChatModel(responses=[scripted])
    assert model.with_structured_output(Answer).invoke("q") == Answer(answer="tool", score=9)


def test_structured_output_include_raw_success() -> None:
    model = ScriptedChatModel(responses=[scripted_json(answer="ok", score=1)])
    result = model.with_structured_output(Answer, include_raw=True).invoke("q")
    assert isinstance(result["raw"], AIMessage)
    assert result["parsed"] == Answer(answer="ok", score=1)
    assert result["parsing_error"] is None


def test_structured_output_include_raw_malformed() -> None:
    model = ScriptedChatModel(responses=["this is not json at all", '{"answer": "x"}'])
    structured = model.with_structured_output(Answer, include_raw=True)
    for _ in range(2):  # no JSON, then JSON failing validation
        result = structured.invoke("q")
        assert result["parsed"] is None
        assert isinstance(result["parsing_error"], OutputParserException)
        assert isinstance(result["raw"], AIMessage)


def test_structured_output_malformed_raises() -> None:
    model = ScriptedChatModel(responses=["{broken json", '{"answer": "x", "score": "NaN?"}'])
    structured = model.with_structured_output(Answer)
    with pytest.raises(OutputParserException):
        structured.invoke("q")
    with pytest.raises(OutputParserException, match="Answer"):
        structured.invoke("q")


def test_structured_output_rejects_unknown_kwargs() -> None:
    model = ScriptedChatModel()
    model.with_structured_output(Answer, method="json_schema", strict=True)
    with pytest.raises(ValueError, match="unsupported"):
        model.with_structured_output(Answer, bogus=1)


# ---------------------------------------------------------------------------------------------
# ScriptedChatModel: concurrency, latency, batch, LangGraph
# ---------------------------------------------------------------------------------------------


def test_fifty_concurrent_ainvoke_with_responder() -> None:
    model = ScriptedChatModel(responder=lambda msgs: f"re: {msgs[-1].content}", latency=0.001)

    async def run() -> list[AIMessage]:
        return await asyncio.gather(*(model.ainvoke(f"q{i}") for i in range(50)))

    results = asyncio.run(run())
    assert [r.content for r in results] == [f"re: q{i}" for i in range(50)]
    assert model.call_count == 50
    assert sorted(c["messages"][-1].content for c in model.calls) == sorted(
        f"q{i}" for i in range(50)
    )


def test_concurrent_scripted_responses_each_used_once() -> None:
    model = ScriptedChatModel(responses=[str(i) for i in range(20)])

    async def run() -> list[AIMessage]:
        return await asyncio.gather(*(model.ainvoke("q") for _ in range(20)))

    contents = sorted(int(r.content) for r in asyncio.run(run()))
    assert contents == list(range(20))
    with pytest.raises(ScriptExhaustedError, match="served 20"):
        model.invoke("one too many")


def test_latency_is_async_so_calls_overlap() -> None:
    finished: list[int] = []
    max_in_flight = 0

    def responder(messages: list[BaseMessage]) -> str:
        nonlocal max_in_flight
        # Calls are recorded before the latency sleep, so recorded-but-unfinished = in flight.
        max_in_flight = max(max_in_flight, model.call_count - len(finished))
        finished.append(1)
        return "ok"

    model = ScriptedChatModel(responder=responder, latency=0.05)

    async def run() -> None:
        await asyncio.gather(*(model.ainvoke("q") for _ in range(5)))

    asyncio.run(run())
    assert len(finished) == 5
    assert max_in_flight > 1


def test_sync_latency_path_works() -> None:
    model = ScriptedChatModel(responses=["slow"], latency=0.01)
    assert model.invoke("x").content == "slow"


def test_abatch() -> None:
    model = ScriptedChatModel(responder=lambda msgs: msgs[-1].content.upper())
    results = asyncio.run(model.abatch(["a", "b", "c"]))
    assert [r.content for r in results] == ["A", "B", "C"]
    assert model.call_count == 3


def test_async_responder_supported_on_async_path_only() -> None:
    async def responder(messages: list[BaseMessage]) -> str:
        await asyncio.sleep(0)
        return "async reply"

    model = ScriptedChatModel(responder=responder)
    assert asyncio.run(model.ainvoke("x")).content == "async reply"
    with pytest.raises(TypeError, match="async API"):
        model.invoke("x")


def test_works_inside_langgraph_node() -> None:
    model = ScriptedChatModel(responses=["graph reply"])

    async def call_model(state: MessagesState) -> dict[str, list[BaseMessage]]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("model", call_model)
    builder.add_edge(START, "model")
    builder.add_edge("model", END)
    graph = builder.compile()

    result = asyncio.run(graph.ainvoke({"messages": [HumanMessage("hi graph")]}))
    assert result["messages"][-1].content == "graph reply"
    assert result["messages"][-1].usage_metadata["total_tokens"] == 15
    assert model.calls[0]["messages"][0].content == "hi graph"


# ---------------------------------------------------------------------------------------------
# ScriptedAgent
# ---------------------------------------------------------------------------------------------


def _request(mode: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "mode": mode,
        "task": "write a report",
        "step": None,
        "attempt": 1,
        "guidance": [],
        "prior_results": {},
    }
    base.update(fields)
    return base


def test_agent_default_plan() -> None:
    agent = ScriptedAgent()
    reply = asyncio.run(agent.ainvoke(_request("planning")))
    assert json.loads(reply["content"]) == {"steps": [{"id": 1, "description": "write a report"}]}
    assert reply["tool_calls"] == []
    assert reply["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    assert reply["deliverable"] is None
    assert reply["artifacts"] == {}


def test_agent_scripted_plan_list_and_string() -> None:
    steps = [{"id": 1, "description": "research"}, {"id": 2, "description": "write"}]
    reply = asyncio.run(ScriptedAgent(plan=steps).ainvoke(_request("planning")))
    assert json.loads(reply["content"]) == {"steps": steps}
    raw = asyncio.run(ScriptedAgent(plan="not json").ainvoke(_request("planning")))
    assert raw["content"] == "not json"


def test_agent_execute_default_output() -> None:
    agent = ScriptedAgent()
    step = {"id": 3, "description": "do it"}
    reply = asyncio.run(agent.ainvoke(_request("execute", step=step)))
    assert reply["content"] == "result of step 3"


def test_agent_execute_retry_outputs() -> None:
    agent = ScriptedAgent(
        outputs={
            1: [RuntimeError("agent crashed"), "second try", "third try"],
            2: [{"content": "done", "deliverable": {"rows": 3}, "artifacts": {"a.txt": "x"}}],
        }
    )
    step1 = {"id": 1, "description": "flaky"}

    async def run() -> list[str]:
        with pytest.raises(RuntimeError, match="agent crashed"):
            await agent.ainvoke(_request("execute", step=step1, attempt=1))
        out = []
        for attempt in (2, 3, 4):
            reply = await agent.ainvoke(
                _request("execute", step=step1, attempt=attempt, guidance=["be careful"])
            )
            out.append(reply["content"])
        return out

    assert asyncio.run(run()) == ["second try", "third try", "third try"]

    reply = asyncio.run(agent.ainvoke(_request("execute", step={"id": 2, "description": "d"})))
    assert reply["content"] == "done"
    assert reply["deliverable"] == {"rows": 3}
    assert reply["artifacts"] == {"a.txt": "x"}

    assert agent.calls[0] == {"mode": "execute", "step_id": 1, "attempt": 1, "guidance": []}
    assert agent.calls[1]["guidance"] == ["be careful"]
    assert [c["attempt"] for c in agent.calls] == [1, 2, 3, 4, 1]


def test_agent_callable_outputs_and_object_requests() -> None:
    agent = ScriptedAgent(outputs=lambda req: f"{req.step['description']}#{req.attempt}")
    request = SimpleNamespace(
        mode="execute",
        task="t",
        step={"id": "s1", "description": "analyse"},
        attempt=2,
        guidance=["g"],
        prior_results={},
    )
    reply = asyncio.run(agent.ainvoke(request))
    assert reply["content"] == "analyse#2"
    assert agent.calls == [{"mode": "execute", "step_id": "s1", "attempt": 2, "guidance": ["g"]}]


def test_agent_synthesize_variants() -> None:
    prior = {"1": "alpha", "2": "beta"}
    default = asyncio.run(ScriptedAgent().ainvoke(_request("synthesize", prior_results=prior)))
    assert default["content"] == "1: alpha\n2: beta"

    fixed = asyncio.run(ScriptedAgent(synthesis="final").ainvoke(_request("synthesize")))
    assert fixed["content"] == "final"

    computed = ScriptedAgent(synthesis=lambda req: " + ".join(req["prior_results"].values()))
    reply = asyncio.run(computed.ainvoke(_request("synthesize", prior_results=prior)))
    assert reply["content"] == "alpha + beta"


def test_agent_assert_complete_names_each_unused_part_of_the_script() -> None:
    agent = ScriptedAgent(
        plan=[{"id": 1, "description": "a"}, {"id": 2, "description": "b"}],
        outputs={1: ["wrong", "right"], "2": ["only"]},
        synthesis="done",
        name="student",
    )
    step_one = {"id": "1", "description": "a"}  # ids match across int and str
    asyncio.run(agent.ainvoke(_request("execute", step=step_one)))
    with pytest.raises(AssertionError) as info:
        agent.assert_complete()
    assert str(info.value) == (
        "ScriptedAgent 'student' has 4 scripted part(s) unused after 1 call(s): the plan (no "
        "planning call); step 1 output(s) for attempt 2; step 2 output(s) for attempt 1; the "
        "synthesis (no synthesize call)"
    )


def test_agent_assert_complete_passes_once_the_script_is_used_up() -> None:
    agent = ScriptedAgent(plan=[{"id": 1, "description": "a"}], outputs={1: ["wrong", "right"]},
                          synthesis="done")  # fmt: skip
    step = {"id": 1, "description": "a"}
    for request in (
        _request("planning"),
        _request("execute", step=step),
        _request("execute", step=step, attempt=2),
        _request("execute", step=step, attempt=3),  # the last output repeats
        _request("synthesize"),
    ):
        asyncio.run(agent.ainvoke(request))
    agent.assert_complete()
    ScriptedAgent().assert_complete()  # defaults are not a script
    ScriptedAgent(outputs=lambda request: "x", synthesis=lambda request: "y").assert_complete()


def test_agent_unknown_mode() -> None:
    with pytest.raises(ValueError, match="unknown mode"):
        asyncio.run(ScriptedAgent().ainvoke(_request("dance")))


def test_agent_barrier_proves_concurrency() -> None:
    async def run() -> tuple[list[dict[str, Any]], ScriptedAgent]:
        agent = ScriptedAgent(barrier=asyncio.Barrier(3), barrier_timeout=2.0, latency=0.001)
        replies = await asyncio.gather(
            *(
                agent.ainvoke(_request("execute", step={"id": i, "description": f"s{i}"}))
                for i in (1, 2, 3)
            )
        )
        return replies, agent

    replies, agent = asyncio.run(run())
    assert [r["content"] for r in replies] == [f"result of step {i}" for i in (1, 2, 3)]
    assert agent.call_count == 3


def test_agent_barrier_times_out_when_sequential() -> None:
    async def run() -> None:
        agent = ScriptedAgent(barrier=asyncio.Barrier(2), barrier_timeout=0.05)
        for i in (1, 2):  # sequential: the first call can never meet a second party
            await agent.ainvoke(_request("execute", step={"id": i, "description": "x"}))

    with pytest.raises(TimeoutError, match="not running concurrently") as info:
        asyncio.run(run())
    assert "step 1" in str(info.value)
    assert "2 parties" in str(info.value)
