"""Student nodes: draft a plan, execute one attempt at a step, synthesize the answer."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from langgraph.errors import GraphBubbleUp
from langgraph.runtime import Runtime
from langgraph.types import Command

from atlas_graph import prompts
from atlas_graph.agents import AgentRequest, AgentResponse, coerce_response
from atlas_graph.agents.tool_loop import ToolLoop
from atlas_graph.config import StudentMode
from atlas_graph.plans import parse_plan, plan_issues, single_step_plan
from atlas_graph.redaction import scrub_text
from atlas_graph.routes import step_answer
from atlas_graph.services import AtlasContext, Node, Services
from atlas_graph.state import AtlasState, AttemptRecord, PersonaContext, StepRecord, StepTask
from atlas_graph.telemetry.events import utc_now
from atlas_graph.usage import Usage, merge_usage, reply_usage


def _student_system_prompt(
    services: Services, mode: StudentMode, persona: PersonaContext | None = None
) -> str:
    config = services.config
    persona = persona or {}
    defaults = {
        "planner": prompts.PLANNER,
        "executor": prompts.EXECUTOR,
        "synthesizer": prompts.SYNTHESIZER,
    }
    template = getattr(config.student.prompts, mode) or defaults[mode]
    base = config.agent.system_prompt if config.agent else ""
    rewritten = persona.get("prompts", {}).get("planner" if mode == "planner" else "executor")
    text = prompts.system_prompt(template, rewritten or base)
    extra = config.student.prompt_guidance.get(mode)
    text = f"{text}\n\n{extra}" if extra else text
    return prompts.with_learning(text, persona.get("learning", {}).get("student"))


def _tools(services: Services) -> list[dict[str, Any]]:
    return services.toolbox.schemas()


def _usage(response: AgentResponse) -> dict[str, Usage]:
    return {"student": reply_usage(response.usage)}


def _metadata(state: AtlasState | StepTask) -> dict[str, Any]:
    return {**state.get("session_metadata", {}), "session_id": state.get("session_id", "")}


def make_plan_node(services: Services) -> Node:
    """The student drafts a plan; an unparseable or late draft becomes one step, with a note.

    Planning is bounded like an attempt, by ``orchestration.step_timeout_seconds``.
    """
    timeout = services.config.orchestration.step_timeout_seconds

    async def plan(state: AtlasState, runtime: Runtime[AtlasContext]) -> AtlasState:
        task = state["task"]
        review = state.get("review") or {}
        concerns = [*review.get("concerns", []), *review.get("issues", [])]
        request = AgentRequest(
            mode="planning",
            task=task,
            prompt=prompts.planning_message(task, concerns),
            system_prompt=_student_system_prompt(services, "planner", state.get("persona_context")),
            guidance=concerns,
            tools=_tools(services),
            max_tokens=services.config.student.max_plan_tokens,
            metadata=_metadata(state),
        )
        notes: list[str] = []
        update: AtlasState = {"plan_drafts": 1}
        try:
            async with asyncio.timeout(timeout):
                response = coerce_response(await services.agent(runtime).ainvoke(request))
            update["usage"] = _usage(response)
            steps = parse_plan(response.content)
        except GraphBubbleUp:  # an interrupt() pauses the session
            raise
        except TimeoutError:
            notes.append(
                f"planning timed out after {timeout:g}s (orchestration.step_timeout_seconds); "
                "falling back to one step"
            )
            steps = single_step_plan(task)["steps"]
        except Exception as error:
            # the note is for the session record only: no prompt of the student carries it
            notes.append(
                f"plan draft unusable, falling back to one step: {type(error).__name__}: "
                f"{scrub_text(str(error))}"
            )
            steps = single_step_plan(task)["steps"]
        issues = plan_issues(steps)
        update["plan_draft"] = {"steps": steps, "issues": issues}
        update["plan_notes"] = notes
        services.emit(
            runtime, "plan_ready", session_id=state.get("session_id", ""), actor="student",
            steps=steps, issues=issues, draft=state.get("plan_drafts", 0) + 1,
        )  # fmt: skip
        return update

    return plan


def make_execute_node(services: Services) -> Node:
    """One attempt at one step; agent errors and timeouts are failed attempts, not crashes.

    The attempt runs the agent ⇄ tool loop (``atlas_graph.agents.tool_loop``): tool calls and
    results become ``tool_call``/``tool_result`` events and the attempt's ``tool_calls``.
    """
    timeout = services.config.orchestration.step_timeout_seconds
    agent_config = services.config.agent
    toolbox = services.toolbox
    max_rounds = agent_config.max_tool_rounds if agent_config else 8

    async def execute(task: StepTask, runtime: Runtime[AtlasContext]) -> Command[Any]:
        step, attempt = task["step"], task["attempt"]
        session_id = task.get("session_id", "")
        services.emit(
            runtime, "step_attempt_started", session_id=session_id, actor="student",
            step_id=step["id"], attempt=attempt, intermediate=True,
            description=step["description"], guidance=task.get("guidance", []),
        )  # fmt: skip
        request = AgentRequest(
            mode="execute",
            task=task["task"],
            prompt=prompts.execute_message(
                task["task"], step, task.get("prior_results", {}), task.get("guidance", []),
                services.config.orchestration.rim_guidance_tag,
            ),
            system_prompt=_student_system_prompt(
                services, "executor", task.get("persona_context")
            ),
            step=dict(step),
            attempt=attempt,
            guidance=task.get("guidance", []),
            prior_results=task.get("prior_results", {}),
            tools=_tools(services),
            max_tokens=services.config.student.max_step_tokens,
            metadata=_metadata(task),
        )  # fmt: skip
        started_at = utc_now()
        started = time.perf_counter()
        loop = ToolLoop(
            toolbox, max_rounds, state=task,
            on_call=lambda number, call: services.emit(
                runtime, "tool_call", session_id=session_id, actor="student",
                step_id=step["id"], attempt=attempt, intermediate=True,
                round=number, call_id=call["id"], tool=call["name"], args=call["args"],
            ),
            on_result=lambda number, result: services.emit(
                runtime, "tool_result", session_id=session_id, actor="tool",
                step_id=step["id"], attempt=attempt, intermediate=True,
                round=number, call_id=result.tool_call_id, tool=result.name,
                output=result.content, is_error=result.is_error,
            ),
        )  # fmt: skip
        error: str | None = None
        try:
            async with asyncio.timeout(timeout):
                await loop.run(services.agent(runtime), request)
        except TimeoutError:
            error = f"attempt timed out after {timeout:g}s (orchestration.step_timeout_seconds)"
        except GraphBubbleUp:  # an interrupt() pauses the session
            raise
        except Exception as exc:
            error = f"agent failed: {type(exc).__name__}: {scrub_text(str(exc))}"
        error = error or loop.error
        response = loop.response
        elapsed_ms = (time.perf_counter() - started) * 1000
        output = response.content if response else ""
        trace = loop.trace()
        record: AttemptRecord = {
            "attempt": attempt,
            "output": output,
            "error": error,
            "deliverable": response.deliverable if response else None,
            "artifacts": response.artifacts if response else {},
            "trace": f"{trace}\n{error}".strip() if error and error not in trace else trace,
            "tool_calls": loop.records(),
            "timings_ms": {"execute": round(elapsed_ms, 3)},
            "reasoning": response.reasoning if response else None,
        }
        services.emit(
            runtime, "step_attempt_finished", session_id=session_id, actor="student",
            step_id=step["id"], attempt=attempt, intermediate=True,
            output=output, error=error, elapsed_ms=round(elapsed_ms, 3),
        )  # fmt: skip
        step_update: StepRecord = {"attempts": [record], "output": output}
        if attempt == 1:
            step_update.update({
                "step_id": step["id"], "status": "running", "guidance": [],
                "started_at": started_at, "prior_results": task.get("prior_results", {}),
            })  # fmt: skip
        update: AtlasState = {"steps": {str(step["id"]): step_update}}
        if loop.usage["calls"]:
            update["usage"] = {"student": {**loop.usage}}
        goto = services.routes.after_execute(task, {
            "output": output, "error": error, "execute_ms": elapsed_ms,
            "tool_calls": record["tool_calls"],
            "spent": merge_usage(task.get("spent"), update.get("usage")),
        })  # fmt: skip
        if isinstance(goto, str):  # not validated: the step is done
            step_update.update({
                "status": "failed" if error else "succeeded", "completed_at": utc_now(),
                "validation": None,
            })  # fmt: skip
            update.update(step_answer(goto, output))
        return Command(update=update, goto=goto)

    return execute


def make_synthesize_node(services: Services) -> Node:
    """The student's synthesis of a stepwise plan's results into the final answer.

    Bounded by ``orchestration.step_timeout_seconds``; a failed or late synthesis joins the
    step outputs.
    """
    timeout = services.config.orchestration.step_timeout_seconds

    async def synthesize(state: AtlasState, runtime: Runtime[AtlasContext]) -> AtlasState:
        records = state.get("steps", {})
        results = {
            str(step["id"]): records.get(str(step["id"]), {}).get("output", "")
            for step in state["plan"]["steps"]
        }
        request = AgentRequest(
            mode="synthesize",
            task=state["task"],
            prompt=prompts.synthesis_message(state["task"], results),
            system_prompt=_student_system_prompt(
                services, "synthesizer", state.get("persona_context")
            ),
            prior_results=results,
            max_tokens=services.config.student.max_synthesis_tokens,
            metadata=_metadata(state),
        )
        try:
            async with asyncio.timeout(timeout):
                response = coerce_response(await services.agent(runtime).ainvoke(request))
        except GraphBubbleUp:  # an interrupt() pauses the session
            raise
        except Exception as exc:
            # the answer is the step outputs themselves, never the error; the note is for the
            # session record only
            joined = "\n\n".join(output for output in results.values() if output)
            reason = (
                f"timed out after {timeout:g}s (orchestration.step_timeout_seconds)"
                if isinstance(exc, TimeoutError)
                else f"{type(exc).__name__}: {scrub_text(str(exc))}"
            )
            return {
                "final_answer": joined,
                "plan_notes": [f"synthesis failed ({reason}); the answer joins the step outputs"],
            }
        return {"final_answer": response.content, "usage": _usage(response)}

    return synthesize
