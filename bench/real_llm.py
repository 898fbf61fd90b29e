"""Sessions against a real OpenAI-compatible server, per lane: speed, cost and readability.

The example config (``configs/examples/openai_agent.yaml``) is pointed at the server by its own
environment variables only, with judges on every lane; a recording proxy between the two sees
every call. Per lane it prints sessions/min, model calls and tokens per session by role,
parse failures (teacher and judge replies that did not parse, re-asks, replies cut off at the
token limit, steps not judged, plans not reviewed, invalid judge samples), internal text in
answers, and p50/p95 session latency; then a JSON document with the machine and every session.

    scripts/local-llm.sh start                  # prints the base URL
    python bench/real_llm.py [--base-url URL] [--sessions 3] [--max-tokens 192]
                             [--concurrency 2] [--lanes auto paired coach escalate]
                             [--json out.json]

``--base-url`` defaults to ``ATLAS_GRAPH_TEST_LLM_BASE_URL``, then ``scripts/local-llm.sh url``.
Nothing asserts; the targets are shown next to the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import yaml  # noqa: E402
from pydantic import BaseModel, ValidationError  # noqa: E402
from recording_proxy import Exchange, RecordingProxy  # noqa: E402

from atlas_graph.models import extract_json  # noqa: E402
from atlas_graph.nodes.arbiter import ArbiterReply  # noqa: E402
from atlas_graph.nodes.judges import JudgeReply  # noqa: E402
from atlas_graph.nodes.teacher import PlanReview, TeacherVerdict  # noqa: E402
from atlas_graph.result import Result  # noqa: E402
from atlas_graph.runner import AtlasRunError, arun  # noqa: E402
from bench.overhead import machine, percentile, report  # noqa: E402

EXAMPLE = ROOT / "configs" / "examples" / "openai_agent.yaml"
LANES = ("auto", "paired", "coach", "escalate")
TASKS = (
    "What is 17 * 23? Give the number.",
    "Name the capital of France in one word.",
    "List two primary colours, then say which one is warmer.",
    "Convert 3 kilometres to metres.",
    "Write one sentence about why the sky is blue.",
)
SCHEMAS: dict[str, tuple[str, type[BaseModel]]] = {
    "TeacherVerdict": ("teacher", TeacherVerdict),
    "PlanReview": ("teacher", PlanReview),
    "JudgeReply": ("judge", JudgeReply),
    "ArbiterReply": ("arbiter", ArbiterReply),
}
INTERNAL = (
    "could not be read", "TeacherVerdict", "PlanReview", "JudgeReply", "ArbiterReply",
    "ModelOutputError", "Traceback", "Error code", "not a valid", "cut off at the token limit",
)  # fmt: skip
LIMIT_SECONDS = 300.0


def default_base_url() -> str:
    url = os.environ.get("ATLAS_GRAPH_TEST_LLM_BASE_URL")
    if url:
        return url
    script = ROOT / "scripts" / "local-llm.sh"
    return subprocess.run(
        [str(script), "url"], check=True, capture_output=True, text=True
    ).stdout.strip()


def config(max_tokens: int, step_timeout: float) -> dict[str, Any]:
    """The example config, short replies, judges on every lane, no storage."""
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["agent"]["llm"]["max_output_tokens"] = max_tokens
    data["teacher"]["llm"]["max_output_tokens"] = max_tokens
    judge = dict(data["teacher"]["llm"])
    data["rim"] = {
        "small_model": judge, "large_model": judge,
        "reuse_validation_as_reward": False, "reward_auto_lane": True,
    }  # fmt: skip
    data["orchestration"]["step_timeout_seconds"] = step_timeout
    data["storage"] = {"backend": "memory"}
    return data


def readable(exchange: Exchange) -> bool:
    """Whether the reply parses as the schema asked for, as ``structured.py`` reads it."""
    _, schema = SCHEMAS[exchange.schema or ""]
    try:
        schema.model_validate(extract_json(exchange.content))
    except (ValueError, ValidationError, RecursionError, TypeError):
        return False
    return True


def finish_reason(exchange: Exchange) -> str:
    choices = exchange.reply.get("choices") or [{}]
    return str(choices[0].get("finish_reason"))


def session_facts(result: Result | None, error: str | None, wall: float) -> dict[str, Any]:
    """What one session recorded: status, time, usage, not judged / not reviewed / invalid."""
    if result is None:
        return {"status": "error", "error": error, "wall_s": round(wall, 2), "usage": {}}
    judges = (result.reward or {}).get("judges", [])
    answer_and_guidance = result.final_answer + "".join(
        text for step in result.steps for text in step.guidance
    )
    return {
        "session_id": result.session_id,
        "status": result.status,
        "wall_s": round(wall, 2),
        "usage": result.usage,
        "steps": len(result.steps),
        "steps_validated": sum(1 for s in result.steps if s.validation is not None),
        "steps_not_judged": sum(1 for s in result.steps if s.not_judged),
        "plans_not_reviewed": sum(1 for n in result.notes if n.startswith("plan not reviewed")),
        "judge_samples": sum(len(entry["samples"]) for entry in judges),
        "judge_invalid": sum(len(entry["invalid_samples"]) for entry in judges),
        "internal_text": [t for t in INTERNAL if t in answer_and_guidance],
        "answer": result.final_answer[:200],
    }


async def run_lane(
    lane: str, sessions: int, concurrency: int, cfg: dict[str, Any], proxy: RecordingProxy
) -> dict[str, Any]:
    proxy.clear()
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int) -> dict[str, Any]:
        async with gate:
            started = time.perf_counter()
            try:
                result = await arun(TASKS[index % len(TASKS)], config=cfg, mode=lane)
                error = None
            except AtlasRunError as problem:
                result, error = None, str(problem)
            return session_facts(result, error, time.perf_counter() - started)

    started = time.perf_counter()
    facts = await asyncio.gather(*(one(index) for index in range(sessions)))
    wall = time.perf_counter() - started
    return summarize(lane, list(facts), wall, proxy.exchanges)


def summarize(
    lane: str, facts: list[dict[str, Any]], wall: float, exchanges: list[Exchange]
) -> dict[str, Any]:
    n = len(facts)
    calls: dict[str, Counter[str]] = defaultdict(Counter)
    for fact in facts:
        for role, usage in fact["usage"].items():
            calls[role].update({"calls": usage["calls"], "tokens": usage["total_tokens"]})
    per_role = {
        role: {"calls": round(c["calls"] / n, 1), "tokens": round(c["tokens"] / n)}
        for role, c in sorted(calls.items())
    }
    structured = [e for e in exchanges if e.schema in SCHEMAS]
    by_role: dict[str, Counter[str]] = defaultdict(Counter)
    for exchange in structured:
        role, _ = SCHEMAS[exchange.schema or ""]
        by_role[role].update({
            "calls": 1, "readable": readable(exchange), "reasks": exchange.is_reask,
            "cut_off": finish_reason(exchange) == "length",
        })  # fmt: skip
    walls = [fact["wall_s"] for fact in facts]
    supervised = sum(by_role[r]["calls"] for r in ("teacher", "judge", "arbiter"))
    readable_calls = sum(by_role[r]["readable"] for r in ("teacher", "judge", "arbiter"))
    return {
        "lane": lane,
        "sessions": n,
        "recorded": sum(1 for fact in facts if fact["status"] in ("succeeded", "failed")),
        "sessions_per_min": round(n / wall * 60, 2),
        "per_session": per_role,
        "structured_calls": {role: dict(c) for role, c in sorted(by_role.items())},
        "readable_pct": round(100 * readable_calls / supervised, 1) if supervised else None,
        "reasks": sum(c["reasks"] for c in by_role.values()),
        "cut_off": sum(c["cut_off"] for c in by_role.values()),
        "steps_not_judged": sum(fact.get("steps_not_judged", 0) for fact in facts),
        "plans_not_reviewed": sum(fact.get("plans_not_reviewed", 0) for fact in facts),
        "judge_invalid": sum(fact.get("judge_invalid", 0) for fact in facts),
        "internal_text_answers": sum(1 for fact in facts if fact.get("internal_text")),
        "over_5_min": sum(1 for w in walls if w >= LIMIT_SECONDS),
        "p50_s": round(percentile(walls, 0.5), 1),
        "p95_s": round(percentile(walls, 0.95), 1),
        "sessions_detail": facts,
    }


def table(lanes: list[dict[str, Any]]) -> str:
    header = (
        "lane", "sessions", "recorded", "sess/min", "calls/session (tokens)",
        "teacher+judge readable", "re-asks", "cut off", "not judged", "not reviewed",
        "invalid judge samples", "internal text", "> 5 min", "p50 s", "p95 s",
    )  # fmt: skip
    rows = [header, tuple("---" for _ in header)]
    for lane in lanes:
        roles = ", ".join(
            f"{role} {v['calls']:g} ({v['tokens']})" for role, v in lane["per_session"].items()
        )
        calls = lane["structured_calls"]
        total = sum(c.get("calls", 0) for c in calls.values())
        good = sum(c.get("readable", 0) for c in calls.values())
        rows.append((
            lane["lane"], str(lane["sessions"]), str(lane["recorded"]),
            f"{lane['sessions_per_min']:.2f}", roles,
            f"{good}/{total} ({lane['readable_pct']}%)", str(lane["reasks"]),
            str(lane["cut_off"]), str(lane["steps_not_judged"]), str(lane["plans_not_reviewed"]),
            str(lane["judge_invalid"]), str(lane["internal_text_answers"]),
            str(lane["over_5_min"]), f"{lane['p50_s']:.1f}", f"{lane['p95_s']:.1f}",
        ))  # fmt: skip
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default=None)
    parser.add_argument("--model", default=os.environ.get("ATLAS_GRAPH_TEST_LLM_MODEL", "smollm2"))
    parser.add_argument("--sessions", type=int, default=3, help="sessions per lane")
    parser.add_argument("--concurrency", type=int, default=2, help="sessions at once")
    parser.add_argument("--max-tokens", type=int, default=192)
    parser.add_argument("--step-timeout", type=float, default=90.0)
    parser.add_argument("--lanes", nargs="+", default=list(LANES), choices=LANES)
    parser.add_argument("--json", default=None, help="write the JSON document here too")
    args = parser.parse_args(argv)
    base_url = args.base_url or default_base_url()
    cfg = config(args.max_tokens, args.step_timeout)
    results = []
    with RecordingProxy(base_url) as proxy:
        os.environ.update({
            "ATLAS_AGENT_API_BASE": proxy.base_url, "ATLAS_TEACHER_API_BASE": proxy.base_url,
            "ATLAS_AGENT_MODEL": args.model, "ATLAS_TEACHER_MODEL": args.model,
            "OPENAI_API_KEY": os.environ.get("OPENAI_API_KEY", "any"),
        })  # fmt: skip
        for lane in args.lanes:
            results.append(await run_lane(lane, args.sessions, args.concurrency, cfg, proxy))
            print(f"{lane}: done", file=sys.stderr)
    supervised = [c for lane in results for c in lane["structured_calls"].values()]
    calls = sum(c.get("calls", 0) for c in supervised)
    good = sum(c.get("readable", 0) for c in supervised)
    overall = {
        "teacher_judge_readable_pct": round(100 * good / calls, 1) if calls else None,
        "target_readable_pct": 95,
        "sessions": sum(lane["sessions"] for lane in results),
        "recorded": sum(lane["recorded"] for lane in results),
        "internal_text_answers": sum(lane["internal_text_answers"] for lane in results),
        "over_5_min": sum(lane["over_5_min"] for lane in results),
    }
    print(table(results))
    print(
        f"\nteacher and judge replies readable: {good}/{calls} "
        f"({overall['teacher_judge_readable_pct']}%, target >= 95%); "
        f"sessions recorded {overall['recorded']}/{overall['sessions']}; "
        f"answers with internal text {overall['internal_text_answers']}; "
        f"sessions over 5 min {overall['over_5_min']}\n"
    )
    settings = {key: value for key, value in vars(args).items() if key != "json"}
    settings["base_url"] = base_url
    report(
        {"machine": machine(), "settings": settings, "overall": overall, "lanes": results},
        args.json,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
