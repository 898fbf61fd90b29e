"""Default prompts and the renderers that turn requests into message text.

Config prompts (``student.prompts.*``, ``teacher.prompts.*``) replace the system prompts
below. A prompt may contain ``{base_prompt}``, replaced by the agent's own system prompt, as in
Atlas configs; no other braces are interpreted, so JSON examples in prompts stay intact.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

PLANNER = """{base_prompt}

You are the student. Break the task into the smallest set of concrete steps that solves it.
Each step names the steps it depends on; steps without a dependency between them may run in
parallel. Reply with JSON only:
{"steps": [{"id": 1, "description": "...", "depends_on": [], "tool": null, "tool_params": {}}]}"""

EXECUTOR = """{base_prompt}

You are the student. Carry out the step you are given, using the results of earlier steps and
any guidance from your teacher. Reply with the result of the step itself."""

SYNTHESIZER = """{base_prompt}

You are the student. Combine the step results into the final answer to the task. Reply with
the answer only."""

PLAN_REVIEW = """You are the teacher. Review the student's plan for the task. Approve it when
it is complete, correct and its dependencies make sense. Otherwise list your concerns and,
when you can, give a revised plan in the same JSON shape as the student's. Reply with JSON:
{"approved": true, "concerns": [], "revised_plan": null}"""

VALIDATION = """You are the teacher. Judge whether the student's output completes the step
correctly. Score it from 0 to 1. When it falls short, write concrete guidance the student can
act on in the next attempt. Reply with JSON:
{"valid": true, "score": 0.9, "rationale": "...", "guidance": ""}"""

GUIDANCE = """You are the teacher. The student's last attempt at a step fell short. Write
short, concrete guidance that fixes what went wrong. Reply with the guidance only."""


def system_prompt(template: str, base_prompt: str | None) -> str:
    """Fill ``{base_prompt}`` and drop the blank lines an empty base leaves behind."""
    return template.replace("{base_prompt}", base_prompt or "").strip()


def format_prior_results(prior_results: Mapping[str, str]) -> str:
    """Earlier step outputs as a readable block."""
    if not prior_results:
        return "(none)"
    return "\n".join(f"- step {step_id}: {output}" for step_id, output in prior_results.items())


def format_guidance(guidance: Sequence[str]) -> str:
    """Guidance from earlier attempts, oldest first."""
    return "\n".join(f"{number}. {text}" for number, text in enumerate(guidance, 1))


def planning_message(task: str, concerns: Sequence[str] = ()) -> str:
    """The user message asking for a plan; carries the teacher's concerns on a redraft."""
    text = f"Task:\n{task}"
    if concerns:
        text += "\n\nYour teacher rejected the previous plan:\n" + format_guidance(concerns)
    return text


def execute_message(
    task: str,
    step: Mapping[str, Any],
    prior_results: Mapping[str, str],
    guidance: Sequence[str],
    guidance_tag: str = "rim_feedback",
) -> str:
    """The user message for one attempt at one step; guidance sits inside ``guidance_tag``."""
    text = (
        f"Task:\n{task}\n\nStep {step['id']}: {step['description']}"
        f"\n\nResults of earlier steps:\n{format_prior_results(prior_results)}"
    )
    if step.get("tool"):
        text += f"\n\nSuggested tool: {step['tool']} {json.dumps(step.get('tool_params') or {})}"
    if guidance:
        text += (
            f"\n\nTeacher guidance from earlier attempts:\n<{guidance_tag}>\n"
            f"{format_guidance(guidance)}\n</{guidance_tag}>"
        )
    return text


def synthesis_message(task: str, step_results: Mapping[str, str]) -> str:
    """The user message asking for the final answer."""
    return f"Task:\n{task}\n\nStep results:\n{format_prior_results(step_results)}"


def review_message(task: str, steps: Sequence[Mapping[str, Any]], issues: Sequence[str]) -> str:
    """What the teacher sees when reviewing a plan, including detected schedule problems."""
    text = f"Task:\n{task}\n\nPlan:\n{json.dumps({'steps': list(steps)}, indent=2)}"
    if issues:
        text += "\n\nProblems found in this plan:\n" + format_guidance(issues)
    return text


def format_tool_calls(records: Sequence[Mapping[str, Any]]) -> str:
    """An attempt's tool calls and their results, one line each, in the order they ran."""
    lines: list[str] = []
    for record in records:
        arguments = json.dumps(record["args"], default=str)
        lines.append(f"tool call [round {record['round']}]: {record['name']}({arguments})")
        kind = "tool error" if record["is_error"] else "tool result"
        lines.append(f"{kind} [round {record['round']}] {record['name']}: {record['output']}")
    return "\n".join(lines)


def tool_calls_section(records: Sequence[Mapping[str, Any]], whose: str = "this attempt") -> str:
    """The tool calls of an attempt under their heading, or nothing when it used no tool."""
    return f"\n\nTool calls of {whose}:\n{format_tool_calls(records)}" if records else ""


def validation_message(
    task: str,
    step: Mapping[str, Any],
    output: str,
    prior_results: Mapping[str, str],
    tool_calls: Sequence[Mapping[str, Any]] = (),
) -> str:
    """What the teacher sees when validating one attempt, with the tools it used, if any.

    The tool results are the evidence behind an answer such as "the result is 391", so the
    teacher can tell a checked answer from a guess.
    """
    used = tool_calls_section(tool_calls)
    return (
        f"Task:\n{task}\n\nStep {step['id']}: {step['description']}"
        f"\n\nResults of earlier steps:\n{format_prior_results(prior_results)}{used}"
        f"\n\nStudent output:\n{output}"
    )


def guidance_message(
    task: str,
    step: Mapping[str, Any],
    output: str,
    rationale: str,
    score: float,
    tool_calls: Sequence[Mapping[str, Any]] = (),
) -> str:
    """What the teacher sees when writing guidance for a retry, with the tools it used."""
    used = tool_calls_section(tool_calls)
    return (
        f"Task:\n{task}\n\nStep {step['id']}: {step['description']}{used}"
        f"\n\nStudent output:\n{output}\n\nVerdict: score {score:.2f}. {rationale}"
    )


PROBE = """You are the capability probe of a teacher/student runtime. From the triage dossier of
a task and the recent history of this kind of work, judge how likely the agent is to handle the
task well without supervision. Reply with JSON: {"mode": "auto" | "paired" | "coach" |
"escalate", "confidence": 0.0-1.0, "evidence": ["short reasons"]}. High confidence means little
supervision is needed; risky, novel or recently failing work deserves low confidence."""


def probe_message(dossier: Mapping[str, Any], history: Mapping[str, Any] | None) -> str:
    """What the probe reads: the dossier and the fingerprint's recent sessions."""
    seen = json.dumps(history, indent=2, default=str) if history else "(no earlier sessions)"
    return (
        f"Triage dossier:\n{json.dumps(dossier, indent=2, default=str)}"
        f"\n\nRecent history of this fingerprint:\n{seen}"
    )


def with_learning(text: str, pamphlet: str | None) -> str:
    """A system prompt with the learning playbook's pamphlet appended."""
    return f"{text}\n\n{pamphlet}" if pamphlet else text


PERSONA_REWRITE = """Rewrite an agent's system prompt into three personas for a teacher/student
runtime: "planner" (the student breaking a task into steps), "executor" (the student carrying
out one step and writing the final answer) and "teacher" (the supervisor reviewing plans and
judging the student's work in this domain). Keep every domain fact and constraint of the
original. Reply with JSON: {"planner": "...", "executor": "...", "teacher": "..."}"""

PLAYBOOK_SYNTHESIZER = """You maintain the learning playbook of an agent supervised by a
teacher. From one finished session (task, steps, tool calls, teacher guidance, reward) and the
current playbook, propose at most a few entries that would make the next sessions of this kind
of work better, and write one short learning note for the student and one for the teacher.

Each entry (schema playbook_entry.v1) has:
- "audience": "student" or "teacher";
- "cue": {"type": "regex" | "keyword" | "predicate", "pattern": "..."}: when the entry applies,
  detectable in the task or step text; keywords are comma-separated;
- "action": {"imperative": "Verb first ...", "runtime_handle": "tool or handle name or null"};
- "expected_effect": what following it changes;
- "scope": {"category": "reinforcement" (keep doing what worked) or "differentiation" (do
  differently from what failed), "constraints": ["..."]}.
To revise an entry already in the playbook, give its "id". Keep entries general: no incident
ids, names or numbers. Propose nothing when the playbook already covers the lesson.
Reply with JSON: {"entries": [...], "student_learning": "...", "teacher_learning": "..."}"""
