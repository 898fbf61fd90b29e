"""LangSmith evaluators over a session's outcome, for ``langsmith.evaluate``.

The target of an experiment runs a session and returns its ``Result`` (``result.model_dump()``)
or the graph's output state; ``session_reward`` turns that into feedback, so an experiment's
score is the reward the session's own judges gave, next to any evaluator of your own::

    from langsmith import evaluate
    from atlas_graph import run
    from atlas_graph.evaluation.evaluators import session_reward

    evaluate(
        lambda inputs: run(inputs["task"], config="atlas.yaml").model_dump(),
        data="my-dataset",
        evaluators=[session_reward],
    )
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

REWARD_KEY = "session_reward"


def session_reward(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """The session's reward as LangSmith feedback ``session_reward`` (score in [0, 1]).

    A session without a reward (the ``auto`` lane without judges, or one that failed before
    its reward) gives ``score: None`` with a comment saying why, never a made-up number.
    """
    reward = outputs.get("reward") or {}
    score = reward.get("score") if isinstance(reward, Mapping) else None
    if score is None:
        status = outputs.get("status", "unknown")
        return {"key": REWARD_KEY, "score": None,
                "comment": f"no session reward (status {status})"}  # fmt: skip
    rationale = reward.get("rationale") or ""
    return {"key": REWARD_KEY, "score": float(score), "comment": str(rationale)[:2000]}
