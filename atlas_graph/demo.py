"""The offline demo: the whole loop with no API key and no network.

Everything here is deterministic and labelled offline. The student is a small arithmetic
agent that plans, computes (products with a calculator tool) and, on a first attempt, forgets
to state a requested unit; the
teacher is a programmatic validator that recomputes the answer and checks the unit; the judge
scores the process. Together they show every lane, a tool call, a failed attempt, guidance, a
successful retry and a reward, without a model.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from math import prod
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atlas_graph.agents import AgentRequest
from atlas_graph.lanes import Lane

if TYPE_CHECKING:
    from atlas_graph.nodes.judges import JudgeRequest
    from atlas_graph.nodes.teacher import PlanReviewRequest, ValidationRequest

DEMO_TASKS: list[tuple[Lane, str]] = [
    ("auto", "Add 19 and 23."),
    ("paired", "Multiply 17 by 23."),
    ("coach", "Add the latencies 120, 80 and 45 and report the total in ms."),
    ("escalate", "Add 1200 and 340, multiply 12 by 9, then add both results."),
]

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_UNIT = re.compile(r"\bin (ms|seconds|minutes)\b")


def demo_config_path() -> Path:
    """The packaged ``offline_demo.yaml``."""
    return Path(str(resources.files("atlas_graph") / "examples" / "offline_demo.yaml"))


def _format(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.4g}"


def _instruction(step: dict[str, Any] | None, task: str) -> str:
    # A collapsed plan lists its sub-steps after the task; the task line says it all.
    text = step["description"] if step else task
    return text.strip().splitlines()[0]


def expected_answer(instruction: str, prior_results: dict[str, str]) -> tuple[float, str | None]:
    """The number an instruction asks for, and the unit it wants reported, if any."""
    if "results" in instruction.lower():
        numbers = [float(n) for out in prior_results.values() for n in _NUMBER.findall(out)[:1]]
    else:
        numbers = [float(n) for n in _NUMBER.findall(instruction)]
    value = prod(numbers) if instruction.lower().startswith("multiply") else sum(numbers)
    unit = _UNIT.search(instruction)
    return value, unit.group(1) if unit else None


def _plan(task: str) -> list[dict[str, Any]]:
    clauses = [c.strip() for c in re.split(r",\s*(?:then\s+)?", task.rstrip(".")) if c.strip()]
    if len(clauses) < 2 or not any("results" in c for c in clauses):
        return [
            {"id": 1, "description": task, "depends_on": []},
            {"id": 2, "description": "Check the result and its unit.", "depends_on": [1]},
        ]
    steps: list[dict[str, Any]] = [
        {"id": number, "description": clause[0].upper() + clause[1:] + ".", "depends_on": []}
        for number, clause in enumerate(clauses[:-1], 1)
    ]
    final = clauses[-1]
    steps.append({
        "id": len(clauses),
        "description": final[0].upper() + final[1:] + ".",
        "depends_on": [step["id"] for step in steps],
    })  # fmt: skip
    return steps


def student(request: AgentRequest) -> dict[str, Any]:
    """The offline student agent: plans, computes, and slips on units until guided."""
    if request.mode == "planning":
        return {"content": json.dumps({"steps": _plan(request.task)})}
    if request.mode == "synthesize":
        last = list(request.prior_results.values())[-1] if request.prior_results else ""
        steps = "; ".join(f"step {k}: {v}" for k, v in request.prior_results.items())
        return {"content": f"{last} ({steps})"}
    instruction = _instruction(request.step, request.task)
    value, unit = expected_answer(instruction, request.prior_results)
    if instruction.lower().startswith("multiply") and request.tools:
        # products go through the calculator tool: ask for it, then report what it said
        if not request.tool_rounds:
            numbers = _NUMBER.findall(instruction)
            call = {
                "id": "calc-1",
                "name": "calculate",
                "args": {"expression": " * ".join(numbers)},
            }
            return {"content": "", "tool_calls": [call]}
        value = float(request.tool_rounds[-1].results[-1].content)
    answer = _format(value)
    guided = any("unit" in text.lower() for text in request.guidance)
    if unit and guided:
        answer = f"{answer} {unit}"
    return {"content": answer, "deliverable": {"value": value}}


def validator(request: ValidationRequest) -> dict[str, Any]:
    """The offline teacher: recompute the answer and check the requested unit."""
    value, unit = expected_answer(_instruction(request.step, request.task), request.prior_results)
    found = _NUMBER.findall(request.output)
    if not found or float(found[0]) != value:
        return {
            "valid": False,
            "score": 0.0,
            "rationale": f"expected {_format(value)}, got {request.output!r}",
            "guidance": f"Recompute: the correct result is {_format(value)}.",
        }
    if unit and unit not in request.output:
        return {
            "valid": False,
            "score": 0.4,
            "rationale": f"the number is right but the unit '{unit}' is missing",
            "guidance": f"State the unit: write the number followed by '{unit}'.",
        }
    return {"valid": True, "score": 1.0, "rationale": "correct", "guidance": ""}


def plan_reviewer(request: PlanReviewRequest) -> dict[str, Any]:
    """The offline teacher's plan review: approve schedulable plans."""
    if request.issues:
        return {"approved": False, "concerns": list(request.issues)}
    return {"approved": True, "concerns": []}


def process_judge(request: JudgeRequest) -> dict[str, Any]:
    """The offline judge: full marks for clean steps, less for each retry or failure."""
    steps = list(request.steps.values())
    retries = sum(max(0, len(step.get("attempts", [])) - 1) for step in steps)
    failed = sum(step.get("status") != "succeeded" for step in steps)
    score = max(0.0, 1.0 - 0.1 * retries - 0.5 * failed)
    return {"score": score, "rationale": f"{retries} retries, {failed} failed steps"}
