"""A worker process for the crash-resume tests: runs an escalate session and can kill itself.

Every finished model or agent call appends one JSON line to the call log (flushed and
fsynced before the call returns), so the test can prove that no finished call ran twice
across processes. ``--kill-at`` makes the process SIGKILL itself at one point:

- ``execute``: inside the student's execution of step 2 (step 1 is done and validated);
- ``after-validate``: in the teacher's guidance call that follows a failed validation;
- ``reward``: inside the judge's call, after synthesis.

Used two ways: ``python crash_worker.py ...`` drives ``arun`` with scripted chat models, and
the functions ``student``, ``validator`` and ``plan_reviewer`` serve as Python callables of a
config for the CLI (log and kill point from ``CRASH_LOG`` and ``CRASH_KILL_AT``).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import signal
import sys
from typing import Any

from langchain_core.messages import BaseMessage

from atlas_graph.runner import arun
from atlas_graph.testing import ScriptedAgent, ScriptedChatModel

TASK = "Summarise the incident."
PLAN = [
    {"id": 1, "description": "Gather facts.", "depends_on": []},
    {"id": 2, "description": "Write summary.", "depends_on": [1]},
]
OUTPUTS = {1: ["draft", "facts"], 2: ["summary"]}
KILL_POINTS = ("execute", "after-validate", "reward")


def log_call(path: str, entry: dict[str, Any]) -> None:
    """Append one finished call, durably, before the caller sees its result."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def die() -> None:
    """End this process the hard way: no cleanup, no final checkpoint."""
    os.kill(os.getpid(), signal.SIGKILL)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class LoggingAgent(ScriptedAgent):
    """The scripted student, logging each finished call and killing at ``execute``."""

    def __init__(self, log: str, kill_at: str | None) -> None:
        super().__init__(plan=PLAN, outputs=OUTPUTS, synthesis="final summary")
        self.log, self.kill_at = log, kill_at

    async def ainvoke(self, request: Any) -> dict[str, Any]:
        step = (request.step or {}).get("id") if request.step else None
        if self.kill_at == "execute" and request.mode == "execute" and step == 2:
            die()
        reply = await super().ainvoke(request)
        log_call(self.log, {"role": "student", "mode": request.mode, "step": step,
                            "attempt": request.attempt})  # fmt: skip
        return reply


def teacher_model(log: str, kill_at: str | None) -> ScriptedChatModel:
    """Reviews approve, 'draft' fails validation once, guidance comes from its own call."""

    def respond(messages: list[BaseMessage]) -> str:
        text = str(messages[-1].content)
        if "\n\nPlan:\n" in text:
            kind, reply = "review", json.dumps({"approved": True, "concerns": []})
        elif "\n\nVerdict: score" in text:
            if kill_at == "after-validate":
                die()
            kind, reply = "guide", "Add the facts."
        elif text.endswith("Student output:\ndraft"):
            kind = "validate"
            reply = json.dumps({"valid": False, "score": 0.2, "rationale": "rough",
                                "guidance": "Add facts."})  # fmt: skip
        else:
            kind, reply = "validate", json.dumps({"valid": True, "score": 0.95, "rationale": "ok"})
        log_call(log, {"role": "teacher", "kind": kind, "prompt": _digest(text)})
        return reply

    return ScriptedChatModel(responder=respond)


def judge_model(log: str, kill_at: str | None) -> ScriptedChatModel:
    """One judge call per session; the kill point ``reward`` fires inside it."""

    def respond(messages: list[BaseMessage]) -> str:
        if kill_at == "reward":
            die()
        log_call(log, {"role": "judge", "prompt": _digest(str(messages[-1].content))})
        return json.dumps({"score": 0.9, "rationale": "complete", "uncertainty": 0.1})

    return ScriptedChatModel(responder=respond)


def worker_config(database_url: str) -> dict[str, Any]:
    return {
        "storage": {"database_url": database_url, "durability": "sync"},
        "teacher": {"guidance_call": True, "plan_cache_seconds": 0},
        # one temperature: one judge call per session, so every logged call is unique
        "rim": {"judges": [{"identifier": "process", "kind": "process"}], "temperatures": [0.5]},
    }


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--thread", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--kill-at", choices=KILL_POINTS)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    result = await arun(
        None if args.resume else TASK,
        config=worker_config(args.database_url),
        mode=None if args.resume else "escalate",
        thread_id=args.thread,
        agent=LoggingAgent(args.log, args.kill_at),
        models={
            "teacher": teacher_model(args.log, args.kill_at),
            "judge": judge_model(args.log, args.kill_at),
        },
    )
    print(result.model_dump_json())
    return 0


# -- Python callables for the CLI worker test ------------------------------------------------


def _env() -> tuple[str, str | None]:
    return os.environ["CRASH_LOG"], os.environ.get("CRASH_KILL_AT") or None


def student(request: Any) -> dict[str, Any]:
    """The student as a config ``agent`` (``type: python``)."""
    log, kill_at = _env()
    step = request.step.get("id") if request.step else None
    if kill_at == "execute" and request.mode == "execute" and step == 2:
        die()
    if request.mode == "planning":
        content = json.dumps({"steps": PLAN})
    elif request.mode == "synthesize":
        content = "final summary"
    else:
        outputs = OUTPUTS[step]
        content = outputs[min(request.attempt, len(outputs)) - 1]
    log_call(log, {"role": "student", "mode": request.mode, "step": step,
                   "attempt": request.attempt})  # fmt: skip
    return {"content": content}


def validator(request: Any) -> dict[str, Any]:
    """The teacher's validation as a config ``teacher.validator``."""
    log, _ = _env()
    valid = request.output != "draft"
    log_call(log, {"role": "teacher", "kind": "validate", "step": request.step["id"],
                   "attempt": request.attempt})  # fmt: skip
    return {"valid": valid, "score": 0.95 if valid else 0.2, "guidance": "Add facts."}


def plan_reviewer(request: Any) -> dict[str, Any]:
    """The teacher's plan review as a config ``teacher.plan_reviewer``."""
    log, _ = _env()
    log_call(log, {"role": "teacher", "kind": "review"})
    return {"approved": True, "concerns": []}


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
