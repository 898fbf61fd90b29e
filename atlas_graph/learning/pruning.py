"""Atlas's four pruning rules, run once an entry has seen ``min_sessions`` sessions.

An entry is pruned when its cue rarely fires (too specific), when sessions that apply it
score lower than sessions that do not (harmful), when the difference is too small to matter
(neutral), or when after ``min_transfer_sessions`` its cue never fired on another task (does
not transfer). A pruned entry keeps its statistics and the reason.
"""

from __future__ import annotations

from typing import Any

from atlas_graph.config import PruningConfig
from atlas_graph.learning.usage import summary


def prune_reason(entry: dict[str, Any], rules: PruningConfig) -> str | None:
    """Why ``entry`` should be pruned now, or None to keep it."""
    seen = summary(entry.get("stats", {}))
    sessions = int(seen["sessions"] or 0)
    if sessions < rules.min_sessions:
        return None
    rate = seen["cue_hit_rate"] or 0.0
    if rate < rules.min_cue_hit_rate:
        return f"too specific: cue hit rate {rate:.2f} < {rules.min_cue_hit_rate:.2f}"
    delta = seen["reward_delta"]
    if delta is not None:
        if delta < -rules.min_reward_delta:
            return f"harmful: reward delta {delta:+.3f} < -{rules.min_reward_delta:.3f}"
        if abs(delta) < rules.min_reward_delta:
            return f"neutral: |reward delta| {abs(delta):.3f} < {rules.min_reward_delta:.3f}"
    if sessions >= rules.min_transfer_sessions and not seen["transfer_sessions"]:
        return f"does not transfer: no cue hit on another task in {sessions} sessions"
    return None
