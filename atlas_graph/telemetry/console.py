"""Terminal renderer of the event stream: live lines of what the student and teacher do.

It reads the items of ``graph.astream(..., stream_mode=["custom", "updates"])`` (``feed``) or
single events (``handle``). When a session ends it prints how long it took, the final answer,
one summary line per step and the reward judges' scores (``RIM scores | max | avg``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

from atlas_graph.nodes.triage import SEVERITIES
from atlas_graph.redaction import scrub_text
from atlas_graph.telemetry.events import AtlasEvent, is_event

_COLORS = {"ok": "\033[32m", "bad": "\033[31m", "note": "\033[36m", "dim": "\033[2m"}
_RESET = "\033[0m"


def _short(text: Any, limit: int = 160) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _score(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, int | float) else "-"


@dataclass
class _Session:
    """What the renderer remembers of one session until it ends."""

    started: float
    answer: str | None = None
    steps: dict[int, dict[str, Any]] = field(default_factory=dict)
    judge_scores: list[float] = field(default_factory=list)
    drafted_steps: int = 0
    task_line: str = ""


class ConsoleRenderer:
    """Print one line per event; colour only on a terminal."""

    def __init__(self, stream: TextIO | None = None, *, color: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.color = _wants_color(self.stream) if color is None else color
        self._sessions: dict[str, _Session] = {}

    def feed(self, mode: str, chunk: Any) -> None:
        """One item of a ``["custom", "updates"]`` stream; only atlas events print."""
        if mode == "custom" and is_event(chunk):
            self.handle(chunk)

    def _paint(self, text: str, tone: str) -> str:
        return f"{_COLORS[tone]}{text}{_RESET}" if self.color else text

    def _line(self, text: str, tone: str | None = None) -> None:
        text = scrub_text(text)  # error text and echoed metadata may quote a key
        print(self._paint(text, tone) if tone else text, file=self.stream, flush=True)

    def _session(self, session_id: str) -> _Session:
        if session_id not in self._sessions:  # a resumed session: timed from here
            self._sessions[session_id] = _Session(started=time.monotonic())
        return self._sessions[session_id]

    def handle(self, event: AtlasEvent) -> None:
        """Render one event."""
        handler = getattr(self, f"_on_{event['atlas_event']}", None)
        if handler is not None:
            step = f"[step {event['step_id']}]" if event.get("step_id") is not None else ""
            handler(event, event["data"], step)

    # ------------------------------------------------------------------ session and plan

    def _on_session_started(self, event: AtlasEvent, data: dict[str, Any], step: str) -> None:
        first = (str(data.get("task", "")).strip().splitlines() or [""])[0]
        self._sessions[event["session_id"]] = _Session(started=time.monotonic(), task_line=first)
        at = event["at"][:19].replace("T", " ")
        self._line(f"task started {at} UTC: {_short(data['task'])}")

    def _on_triage_done(self, event: AtlasEvent, data: dict[str, Any], step: str) -> None:
        # the task itself was just printed; say what triage found instead
        risks = data.get("risks") or []
        parts = []
        summary = str(data.get("summary") or "").strip()
        if summary and summary != self._session(event["session_id"]).task_line[:200]:
            parts.append(summary)  # a summary from metadata or a triage builder
        if risks:
            levels = [r.get("severity") for r in risks if isinstance(r, dict)]
            known = [SEVERITIES.index(level) for level in levels if level in SEVERITIES]
            worst = f", worst {SEVERITIES[max(known)]}" if known else ""
            parts.append(f"{len(risks)} risk(s){worst}")
        else:
            parts.append("no risks flagged")
        if data.get("tags"):
            parts.append(f"tags {', '.join(map(str, data['tags']))}")
        if data.get("fingerprint"):
            parts.append(f"fingerprint {data['fingerprint']}")
        if data.get("builder_error"):
            parts.append(f"builder failed: {data['builder_error']}")
        self._line(f"triage: {_short(' | '.join(parts), 160)}", "dim")

    def _on_lane_decided(self, event: AtlasEvent, data: dict[str, Any], step: str) -> None:
        confidence = data.get("confidence")
        sure = f", confidence {confidence:.2f}" if isinstance(confidence, int | float) else ""
        self._line(f"lane: {data['lane']} ({data.get('reason', data.get('source', ''))}{sure})",
                   "note")  # fmt: skip

    def _on_plan_ready(self, event: AtlasEvent, data: dict[str, Any], step: str) -> None:
        self._session(event["session_id"]).drafted_steps = len(data["steps"])
        self._line(f"plan (draft {data['draft']}):")
        for item in data["steps"]:
            after = item["depends_on"]
            after_text = f" (after {', '.join(map(str, after))})" if after else ""
            self._line(f"  {item['id']}. {_short(item['description'], 120)}{after_text}")
        for issue in data["issues"]:
            self._line(f"  plan problem: {issue}", "bad")

    def _on_review_verdict(self, event: AtlasEvent, data: dict[str, Any], step: str) -> None:
        verdict = "approved" if data["approved"] else "rejected"
        concerns = f": {'; '.join(data['concerns'])}" if data["concerns"] else ""
        plan = data.get("plan") or {}
        drafted = self._session(event["session_id"]).drafted_steps
        if len(plan.get("steps", [])) == 1 < drafted:  # the lane runs the plan as one step
            verdict += f" (the {drafted} steps run as one)"
        if data.get("cached"):
            verdict += " (reused review)"
        self._line(f"review: {verdict}{concerns}", "ok" if data["approved"] else "bad")

    def _on_plan_approval_requested(
        self, event: AtlasEvent, data: dict[str, Any], step: str
    ) -> None:
        self._line(f"plan approval requested (session {event['session_id']})", "note")

    # ------------------------------------------------------------------ steps

    def _on_step_attempt_started(self, event: AtlasEvent, data: dict[str, Any], step: str) -> None:
        lines = str(data.get("description", "")).strip().splitlines() or [""]
        self._line(f"{step} attempt {event['attempt']} started: {_short(lines[0], 100)}")

    def _on_tool_call(self, event: AtlasEvent, data: dict[str, Any], step: str) -> None:
        name = data.get("name") or data.get("tool") or "tool"
        args = data.get("args", data.get("arguments", {}))
        shown = args if isinstance(args, str) else json.dumps(args, default=str)
        self._line(f"{step} tool call: {name}({_short(shown, 100)})".lstrip(), "dim")

    def _on_tool_result(self, event: AtlasEvent, data: dict[str, Any], step: str) -> None:
        name = data.get("name") or data.get("tool") or "tool"
        failed = bool(data.get("is_error") or data.get("error"))
        result = data.get("error") or data.get("output", data.get("result", ""))
        kind = "tool error" if failed else "tool result"
        self._line(f"{step} {kind}: {name} → {_short(result, 120)}".lstrip(),
                   "bad" if failed else "dim")  # fmt: skip

    def _on_step_attempt_finished(self, event: AtlasEvent, data: dict[str, Any], step: str) -> None:
        if data.get("error"):
            self._line(f"{step} attempt {event['attempt']} error: {_short(data['error'])}", "bad")
        else:
            self._line(f"{step} output: {_short(data['output'])}")

    def _on_validation_verdict(self, event: AtlasEvent, data: dict[str, Any], step: str) -> None:
        label = "valid" if data["valid"] else "invalid"
        tone = "ok" if data["valid"] and not data.get("retry") else "bad"
        self._line(f"{step} validation: {label}, score {data['score']:.2f} — "
                   f"{_short(data['rationale'], 120)}", tone)  # fmt: skip

    def _on_not_judged(self, event: AtlasEvent, data: dict[str, Any], step: str) -> None:
        self._line(f"{step} validation: not judged — {_short(data['reason'], 120)}", "note")

    def _on_retry(self, event: AtlasEvent, data: dict[str, Any], step: str) -> None:
        self._line(f"{step} retry: attempt {data['next_attempt']} of {data['max_attempts']}",
                   "note")  # fmt: skip

    def _on_guidance(self, event: AtlasEvent, data: dict[str, Any], step: str) -> None:
        self._line(f"{step} guidance: {_short(data['guidance'])}", "note")

    def _on_step_finished(self, event: AtlasEvent, data: dict[str, Any], step: str) -> None:
        session = self._session(event["session_id"])
        session.steps[int(event["step_id"] or 0)] = data
        self._line(f"{step} {data['status']} after {data['attempts']} attempt(s), "
                   f"score {_score(data['score'])}")  # fmt: skip

    # ------------------------------------------------------------------ reward and learning

    def _on_reward_tier1(self, event: AtlasEvent, data: dict[str, Any], step: str) -> None:
        judge = data.get("judge") or data.get("identifier") or "judge"
        where = f"{step} " if step else ""  # step-scoped judges name their step
        self._line(f"{where}reward tier 1: {judge} {_score(data.get('score'))}", "dim")

    def _on_arbiter_escalation(self, event: AtlasEvent, data: dict[str, Any], step: str) -> None:
        reason = data.get("reason") or data.get("escalation_reason") or ""
        where = f"{step} " if step else ""
        if isinstance(data.get("score"), int | float):  # the arbiter's word on one judge
            judge = data.get("judge") or "judge"
            change = f"{_score(data.get('tier1_score'))} → {_score(data['score'])}"
            kept = "" if data.get("valid", True) else ", unreadable reply: tier-1 kept"
            self._line(f"{where}arbiter: {judge} {change} ({_short(reason, 100)}{kept})", "note")
            return
        self._line(f"{where}arbiter escalation: {_short(reason, 120)}".rstrip(": "), "note")

    def _on_reward(self, event: AtlasEvent, data: dict[str, Any], step: str) -> None:
        session = self._session(event["session_id"])
        judges = data.get("judges", [])
        session.judge_scores = [
            j["score"] for j in judges if isinstance(j.get("score"), int | float)
        ]
        shown = ", ".join(f"{j['identifier']} {_score(j['score'])}" for j in judges)
        self._line(f"reward: {_score(data['score'])}" + (f" ({shown})" if shown else ""))

    def _on_learning_update(self, event: AtlasEvent, data: dict[str, Any], step: str) -> None:
        updates = data.get("updates") or []
        what = "; ".join(
            f"{u.get('action', 'updated')} {u.get('audience', '')} entry {u.get('entry_id', '')}"
            for u in updates
            if isinstance(u, dict)
        )
        self._line(f"playbook: {_short(what or 'updated', 160)}", "dim")

    # ------------------------------------------------------------------ the end

    def _on_final_answer(self, event: AtlasEvent, data: dict[str, Any], step: str) -> None:
        # printed with the summary, after the completion line, as one block
        self._session(event["session_id"]).answer = str(data.get("answer", ""))

    def _on_session_finished(self, event: AtlasEvent, data: dict[str, Any], step: str) -> None:
        session = self._sessions.pop(event["session_id"], None) or _Session(time.monotonic())
        took = time.monotonic() - session.started
        tone = "ok" if data["status"] == "succeeded" else "bad"
        self._line(f"task completed in {took:.2f}s: {data['status']} (lane {data['lane']})", tone)
        if session.answer is not None:
            self._line(f"final answer: {_short(session.answer, 400)}")
        for step_id in sorted(session.steps):
            info = session.steps[step_id]
            self._line(f"  step {step_id}: {info['status']}, attempts {info['attempts']}, "
                       f"score {_score(info['score'])}")  # fmt: skip
        if session.judge_scores:
            scores = session.judge_scores
            self._line(f"RIM scores | max {max(scores):.2f} | avg {sum(scores) / len(scores):.2f}")

    def _on_session_failed(self, event: AtlasEvent, data: dict[str, Any], step: str) -> None:
        session = self._sessions.pop(event["session_id"], None) or _Session(time.monotonic())
        took = time.monotonic() - session.started
        where = f" in {data['node']}" if data.get("node") else ""
        self._line(f"task failed after {took:.2f}s{where}: {_short(data.get('error', ''))}",
                   "bad")  # fmt: skip


def _wants_color(stream: TextIO) -> bool:
    """Colour on a terminal, unless ``NO_COLOR`` is set (no-color.org) or ``TERM=dumb``."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return _isatty(stream)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or file-like without a terminal
        return False
