"""An example Python agent that answers arithmetic steps by calling the ``calculate`` tool.

It shows the structured protocol end to end: the first call asks for a tool, the runtime runs
it, and the second call (with ``request.tool_rounds`` filled in) answers with the result.
Deterministic, so it also runs offline.
"""

from __future__ import annotations

import json
import re

from atlas_graph.agents import AgentRequest, AgentResponse

_EXPRESSION = re.compile(r"[-\d.()+*/% ]*\d[-\d.()+*/% ]*[-+*/%][-\d.()+*/% ]*\d[\d.() ]*")
_WORDS = [
    (re.compile(r"\badd (-?\d+(?:\.\d+)?) and (-?\d+(?:\.\d+)?)", re.I), "{0} + {1}"),
    (re.compile(r"\bmultiply (-?\d+(?:\.\d+)?) by (-?\d+(?:\.\d+)?)", re.I), "{0} * {1}"),
    (re.compile(r"\bsubtract (-?\d+(?:\.\d+)?) from (-?\d+(?:\.\d+)?)", re.I), "{1} - {0}"),
    (re.compile(r"\bdivide (-?\d+(?:\.\d+)?) by (-?\d+(?:\.\d+)?)", re.I), "{0} / {1}"),
]


def expression_in(text: str) -> str | None:
    """The arithmetic a step asks for, as an expression, if it asks for any."""
    for pattern, template in _WORDS:
        match = pattern.search(text)
        if match:
            return template.format(*match.groups())
    match = _EXPRESSION.search(text)
    return match.group(0).strip() if match else None


async def calculator_agent(request: AgentRequest) -> AgentResponse:
    """Plan one step; execute it with the calculator tool; report the tool's answer."""
    if request.mode == "planning":
        plan = {"steps": [{"id": 1, "description": request.task, "depends_on": []}]}
        return AgentResponse(content=json.dumps(plan))
    if request.mode == "synthesize":
        results = [value for value in request.prior_results.values() if value]
        return AgentResponse(content="\n".join(results))
    if request.tool_rounds:
        last = request.tool_rounds[-1].results[-1]
        if last.is_error:
            return AgentResponse(content=f"I could not compute it: {last.content}")
        return AgentResponse(content=f"The result is {last.content}.")
    step_text = (request.step or {}).get("description", "") or request.task
    expression = expression_in(step_text) or expression_in(request.task)
    if expression is None:
        return AgentResponse(content="There is nothing to calculate in this step.")
    return AgentResponse(
        content="",
        tool_calls=[{"id": "calc-1", "name": "calculate", "args": {"expression": expression}}],
    )
