"""An example LangGraph agent for the ``runnable`` adapter: a chat model with its own tools.

``build_graph()`` compiles a small ReAct-style graph (model → tools → model …) around
``ChatOpenAI``. The endpoint comes from the environment, so the same graph talks to OpenAI,
vLLM, Ollama or LM Studio:

- ``ATLAS_AGENT_API_BASE`` (default ``https://api.openai.com/v1``)
- ``ATLAS_AGENT_MODEL`` (default ``gpt-4.1-mini``)
- ``OPENAI_API_KEY`` (local servers accept any value)
"""

from __future__ import annotations

import os

from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from pydantic import SecretStr

from atlas_graph.examples.tools import calculate


@tool("calculate")
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression such as '17 * 23'."""
    return calculate(expression)


def build_graph() -> CompiledStateGraph:
    """The compiled agent graph; the runnable adapter calls this factory once per session run."""
    model = ChatOpenAI(
        base_url=os.environ.get("ATLAS_AGENT_API_BASE", "https://api.openai.com/v1"),
        model=os.environ.get("ATLAS_AGENT_MODEL", "gpt-4.1-mini"),
        api_key=SecretStr(os.environ.get("OPENAI_API_KEY", "not-needed")),
        temperature=0,
        max_retries=1,
        timeout=60,
    ).bind_tools([calculator])

    async def call_model(state: MessagesState) -> dict[str, list]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("model", call_model)
    builder.add_node("tools", ToolNode([calculator]))
    builder.add_edge(START, "model")
    builder.add_conditional_edges("model", tools_condition, ["tools", END])
    builder.add_edge("tools", "model")
    return builder.compile(name="calculator-agent")
