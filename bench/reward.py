"""What the reward system costs in wall time: tier-1 judges in parallel, and the arbiter.

A coach session with scripted models; only judge and arbiter calls sleep (``--latency``,
default 50 ms). Two judges sample at three temperatures each: six calls that overlap, so the
reward should cost about one call's latency, and an escalation about two (tier 1 + arbiter).
The reward time is the session's median wall time minus the same session's median with
zero-latency judges. Nothing asserts on time; the script prints a table and JSON.

    python bench/reward.py [--repeats 20] [--latency 0.05] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from atlas_graph.graph import create_atlas_graph
from atlas_graph.testing import ScriptedAgent, ScriptedChatModel

CONFIG = {
    "storage": {"backend": "memory"},
    "rim": {"active_judges": {"process": True, "helpfulness": True}, "parallel_workers": 8},
}


def teacher_reply(messages: Any) -> str:
    """Approve every plan and pass every attempt, so no session retries."""
    if "\n\nPlan:\n" in str(messages[-1].content):
        return json.dumps({"approved": True, "concerns": []})
    return json.dumps({"valid": True, "score": 0.9, "rationale": "ok", "guidance": ""})


def judge_reply(escalate: bool) -> Any:
    scores = iter([0.9, 0.5, 0.7] * 2 if escalate else [0.8] * 6)

    def respond(messages: Any) -> str:
        if messages[0].content.startswith("You are the arbiter"):
            return json.dumps({"score": 0.6, "rationale": "settled"})
        return json.dumps({"score": next(scores), "rationale": "r", "uncertainty": 0.1})

    return respond


async def session_seconds(latency: float, escalate: bool) -> float:
    judge = ScriptedChatModel(responder=judge_reply(escalate), latency=latency)
    graph = create_atlas_graph(
        CONFIG,
        agent=ScriptedAgent(),
        models={"teacher": ScriptedChatModel(responder=teacher_reply), "judge": judge},
    ).compile()
    started = time.perf_counter()
    state = await graph.ainvoke({"task": "t", "mode": "coach"})
    took = time.perf_counter() - started
    expected_calls = 8 if escalate else 6
    if judge.call_count != expected_calls or state["reward"] is None:
        raise SystemExit(f"unexpected run: {judge.call_count} judge calls")
    return took


async def median_seconds(latency: float, escalate: bool, repeats: int) -> float:
    await session_seconds(latency, escalate)  # warm-up
    return statistics.median([await session_seconds(latency, escalate) for _ in range(repeats)])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    rows = []
    for escalate, tiers in ((False, 1), (True, 2)):
        base = await median_seconds(0.0, escalate, args.repeats)
        slow = await median_seconds(args.latency, escalate, args.repeats)
        reward = slow - base
        rows.append({
            "case": "escalation (tier 1 + arbiter)" if escalate else "agreement (tier 1 only)",
            "judge_calls": 8 if escalate else 6,
            "reward_ms": round(reward * 1000, 1),
            "critical_path_ms": round(tiers * args.latency * 1000, 1),
            "ratio": round(reward / (tiers * args.latency), 2),
        })  # fmt: skip
    print(f"{'case':32} {'calls':>5} {'reward ms':>10} {'path ms':>8} {'ratio':>6}")
    for row in rows:
        print(f"{row['case']:32} {row['judge_calls']:>5} {row['reward_ms']:>10} "
              f"{row['critical_path_ms']:>8} {row['ratio']:>6}")  # fmt: skip
    document = {
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "settings": {"repeats": args.repeats, "latency_s": args.latency, **CONFIG["rim"]},
        "results": rows,
    }
    text = json.dumps(document, indent=2)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    else:
        print(text)


if __name__ == "__main__":
    asyncio.run(main())
