"""The learning curve: reward and tokens per session with and without learning playbooks.

Scripted models only. The student answers refund tasks; it gets them right the first time
only when its prompt's playbook tells it to call ``ledger_lookup``. Without that, the teacher
fails the first attempt and its guidance gets a late, partial fix on the retry (more calls,
more tokens, a lower reward). With learning, the learning model proposes that entry after the
first session; once adopted, sessions need one attempt. A second, unhelpful entry (a courtesy
note the teacher dislikes) is proposed too and pruned when its reward delta turns negative.
Token counts are what the scripted models report: the agent counts its prompt (pamphlet
included) at four characters a token. Nothing asserts; the script prints a table and JSON.

    python bench/learning.py [--sessions 30] [--json out.json] [--plot curve.png]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore

from atlas_graph.graph import create_atlas_graph
from atlas_graph.testing import ScriptedChatModel

KEY = "bench-refunds"
CONFIG: dict[str, Any] = {
    "storage": {"backend": "memory"},
    "orchestration": {"max_retries": 1},
    "learning": {"pruning_config": {"min_sessions": 6, "min_reward_delta": 0.02,
                                    "min_transfer_sessions": 10}},
}  # fmt: skip
LEDGER = {
    "audience": "student", "cue": {"type": "keyword", "pattern": "refund"},
    "action": {"imperative": "Call the ledger lookup before answering a refund",
               "runtime_handle": "ledger_lookup"},
    "expected_effect": "the answer quotes the ledger balance on the first attempt",
}  # fmt: skip
COURTESY = {
    "audience": "student", "cue": {"type": "regex", "pattern": r"invoice\s+\d+"},
    "action": {"imperative": "Append a courtesy note to every invoice answer",
               "runtime_handle": "courtesy_note"},
    "expected_effect": "customers feel heard",
}  # fmt: skip


class Student:
    """Follows the playbook it is shown; otherwise fixes its answer only after guidance."""

    async def ainvoke(self, request: Any) -> dict[str, Any]:
        prompt, task = request.system_prompt, request.task
        if request.mode == "planning":
            content = json.dumps({"steps": [{"id": 1, "description": task}]})
        else:
            used = []
            if "`ledger_lookup`" in prompt:
                used.append("[ledger_lookup]")
            elif any("ledger" in text for text in request.guidance or []):
                used.append("[ledger_lookup late]")
            if "`courtesy_note`" in prompt and "invoice" in task:
                used.append("[courtesy_note]")
            content = f"Refund decision for {task}. " + " ".join(used)
        prompt_tokens = (len(prompt) + len(task)) // 4
        completion = len(content) // 4
        return {"content": content, "deliverable": None, "artifacts": {}, "tool_calls": [],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion,
                          "total_tokens": prompt_tokens + completion}}  # fmt: skip


def teacher_reply(messages: list[BaseMessage]) -> str:
    text = str(messages[-1].content)
    if "\n\nPlan:\n" in text:
        return json.dumps({"approved": True, "concerns": []})
    output = text.split("Student output:", 1)[-1]
    if "[ledger_lookup]" in output:
        score = 0.9
    elif "[ledger_lookup late]" in output:
        score = 0.7
    else:
        return json.dumps({"valid": False, "score": 0.3, "rationale": "no balance",
                           "guidance": "Look up the ledger balance first."})  # fmt: skip
    score -= 0.15 * ("[courtesy_note]" in output)
    return json.dumps({"valid": True, "score": round(score, 2), "rationale": "ok", "guidance": ""})


def learner_reply() -> Any:
    proposals = iter([[LEDGER], [COURTESY]])

    def respond(_messages: list[BaseMessage]) -> str:
        return json.dumps({"entries": next(proposals, []), "student_learning": "s",
                           "teacher_learning": "t"})  # fmt: skip

    return respond


async def curve(sessions: int, learning: bool) -> list[dict[str, Any]]:
    models = {"teacher": ScriptedChatModel(responder=teacher_reply, usage_per_call=(400, 60))}
    if learning:
        models["learning"] = ScriptedChatModel(responder=learner_reply(), usage_per_call=(900, 200))
    graph = create_atlas_graph(CONFIG, agent=Student(), models=models).compile(
        checkpointer=InMemorySaver(), store=InMemoryStore()
    )
    rows = []
    for n in range(1, sessions + 1):
        task = f"Refund request for {'order' if n % 2 else 'invoice'} {n}"
        config = {"configurable": {"thread_id": f"s{n}"}}
        payload = {"task": task, "mode": "coach", "session_metadata": {"learning_key": KEY}}
        state = await graph.ainvoke(payload, config)
        usage = state.get("usage") or {}
        rows.append({
            "session": n, "reward": (state.get("reward") or {}).get("score"),
            "tokens": sum(int(counts["total_tokens"]) for counts in usage.values()),
            "learning_tokens": int(usage.get("learning", {}).get("total_tokens", 0)),
            "attempts": sum(len(r.get("attempts", [])) for r in state["steps"].values()),
        })  # fmt: skip
    return rows


def _mean(rows: list[dict[str, Any]], key: str) -> float:
    return round(statistics.fmean(float(row[key]) for row in rows), 3)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--plot", type=Path, default=None, help="PNG (needs matplotlib)")
    args = parser.parse_args()
    without = await curve(args.sessions, learning=False)
    with_learning = await curve(args.sessions, learning=True)
    print(f"{'session':>7} | {'reward off':>10} {'tokens off':>10} | {'reward on':>9} "
          f"{'tokens on':>9} {'of which learning':>17} {'attempts on':>11}")  # fmt: skip
    for off, on in zip(without, with_learning, strict=True):
        print(f"{off['session']:>7} | {off['reward']:>10.2f} {off['tokens']:>10} | "
              f"{on['reward']:>9.2f} {on['tokens']:>9} {on['learning_tokens']:>17} "
              f"{on['attempts']:>11}")  # fmt: skip
    last = slice(-10, None)
    summary = {
        "without_learning": {"reward_mean": _mean(without, "reward"),
                             "tokens_mean": _mean(without, "tokens"),
                             "reward_last10": _mean(without[last], "reward"),
                             "tokens_last10": _mean(without[last], "tokens")},
        "with_learning": {"reward_mean": _mean(with_learning, "reward"),
                          "tokens_mean": _mean(with_learning, "tokens"),
                          "reward_last10": _mean(with_learning[last], "reward"),
                          "tokens_last10": _mean(with_learning[last], "tokens")},
    }  # fmt: skip
    for name, numbers in summary.items():
        print(f"{name}: " + ", ".join(f"{k} {v}" for k, v in numbers.items()))
    if args.plot:
        from atlas_graph.learning.api import plot_learning_curve

        plot_learning_curve(
            [{"learning_key": "without learning", "sessions": without},
             {"learning_key": "with learning", "sessions": with_learning}], args.plot,
        )  # fmt: skip
    document = {
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "settings": {"sessions": args.sessions, **CONFIG},
        "summary": summary,
        "results": {"without_learning": without, "with_learning": with_learning},
    }
    text = json.dumps(document, indent=2)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    else:
        print(text)


if __name__ == "__main__":
    asyncio.run(main())
