"""Terminal renderer of the event stream: live lines of what the student and teacher do."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from atlas_graph.events import AtlasEvent

_COLORS = {"ok": "\033[32m", "bad": "\033[31m", "note": "\033[36m"}
_RESET = "\033[0m"


def _short(text: str, limit: int = 160) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class ConsoleRenderer:
    """Print one line per event; colour only on a terminal."""

    def __init__(self, stream: TextIO | None = None, *, color: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.color = self.stream.isatty() if color is None else color
        self._started: dict[str, float] = {}

    def _paint(self, text: str, tone: str) -> str:
        return f"{_COLORS[tone]}{text}{_RESET}" if self.color else text

    def _line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def handle(self, event: AtlasEvent) -> None:
        """Render one event."""
        kind, data = event["atlas_event"], event["data"]
        step = f"[step {event['step_id']}]" if event.get("step_id") is not None else ""
        if kind == "session_started":
            self._started[event["session_id"]] = time.monotonic()
            at = event["at"][:19].replace("T", " ")
            self._line(f"task started {at} UTC: {_short(data['task'])}")
        elif kind == "lane_decided":
            self._line(self._paint(f"lane: {data['lane']} ({data['reason']})", "note"))
        elif kind == "plan_ready":
            self._line(f"plan (draft {data['draft']}):")
            for item in data["steps"]:
                after = (
                    f" (after {', '.join(map(str, item['depends_on']))})"
                    if item["depends_on"]
                    else ""
                )
                self._line(f"  {item['id']}. {_short(item['description'], 120)}{after}")
            for issue in data["issues"]:
                self._line(self._paint(f"  plan problem: {issue}", "bad"))
        elif kind == "review_verdict":
            verdict = "approved" if data["approved"] else "rejected"
            tone = "ok" if data["approved"] else "bad"
            concerns = f": {'; '.join(data['concerns'])}" if data["concerns"] else ""
            self._line(self._paint(f"review: {verdict}{concerns}", tone))
        elif kind == "step_attempt_started":
            first_line = data["description"].strip().splitlines()[0]
            self._line(f"{step} attempt {event['attempt']} started: {_short(first_line, 100)}")
        elif kind == "step_attempt_finished":
            if data.get("error"):
                self._line(self._paint(f"{step} attempt {event['attempt']} error: "
                                       f"{_short(data['error'])}", "bad"))  # fmt: skip
            else:
                self._line(f"{step} output: {_short(data['output'])}")
        elif kind == "validation_verdict":
            valid = data["valid"] and not data["retry"]
            label = "valid" if data["valid"] else "invalid"
            self._line(self._paint(
                f"{step} validation: {label}, score {data['score']:.2f} — "
                f"{_short(data['rationale'], 120)}", "ok" if valid else "bad",
            ))  # fmt: skip
        elif kind == "guidance":
            self._line(self._paint(f"{step} guidance: {_short(data['guidance'])}", "note"))
        elif kind == "step_finished":
            self._line(
                f"{step} {data['status']} after {data['attempts']} attempt(s), "
                f"score {data['score']:.2f}"
            )
        elif kind == "reward":
            judges = ", ".join(f"{j['identifier']} {j['score']:.2f}" for j in data["judges"])
            self._line(f"reward: {data['score']:.2f} ({judges})")
        elif kind == "final_answer":
            self._line(f"final answer: {_short(data['answer'], 400)}")
        elif kind == "session_finished":
            began = self._started.pop(event["session_id"], None)
            took = f" in {time.monotonic() - began:.2f}s" if began is not None else ""
            tone = "ok" if data["status"] == "succeeded" else "bad"
            self._line(self._paint(f"task {data['status']}{took} (lane {data['lane']})", tone))
