"""Per-fingerprint history in the LangGraph Store: lanes, rewards, certification, drift.

Layout (namespaces start with ``"atlas"`` so one store can serve other apps too)::

    ("atlas", "fingerprints", <fp>, "sessions")  <session_id>    one history entry
    ("atlas", "fingerprints", <fp>)              "certification" {"score", "rationale", ...}

A history entry is ``{session_id, lane, reward, retries, status, certification_run,
completed_at}``. One item per session keeps concurrent sessions of a fingerprint from
overwriting each other's entries; the oldest entries beyond the cap are deleted.
"""

from __future__ import annotations

import asyncio
import statistics
from typing import Any

from langgraph.store.base import BaseStore

from atlas_graph.deprecation import renamed
from atlas_graph.telemetry.events import utc_now

_READ_LIMIT = 1000  # above any cap, so a read sees every kept entry


def namespace(fp: str) -> tuple[str, ...]:
    """Where a fingerprint's certification lives."""
    return ("atlas", "fingerprints", fp)


def sessions_namespace(fp: str) -> tuple[str, ...]:
    """Where a fingerprint's history entries live, one item per session."""
    return (*namespace(fp), "sessions")


async def aload_sessions(store: BaseStore, fp: str) -> list[dict[str, Any]]:
    """Every kept history entry of ``fp``, oldest first."""
    items = await store.asearch(sessions_namespace(fp), limit=_READ_LIMIT)
    return sorted((dict(item.value) for item in items), key=lambda e: e.get("completed_at", ""))


async def aappend_session(
    store: BaseStore,
    fp: str,
    entry: dict[str, Any],
    cap: int,
    sessions: list[dict[str, Any]] | None = None,
) -> None:
    """Add one finished session and delete the entries older than the newest ``cap``.

    ``sessions`` is the history the caller just read, which saves a second read. A session
    that runs again (a resumed or re-run thread) replaces its earlier entry.
    """
    if sessions is None:
        sessions = await aload_sessions(store, fp)
    await store.aput(sessions_namespace(fp), entry["session_id"], entry)
    kept = [s for s in sessions if s.get("session_id") != entry["session_id"]]
    excess = len(kept) + 1 - cap
    if excess > 0:
        await asyncio.gather(
            *(store.adelete(sessions_namespace(fp), old["session_id"]) for old in kept[:excess])
        )


async def aload_certification(store: BaseStore, fp: str) -> dict[str, Any] | None:
    """The certification verdict of ``fp``, or None when it was never certified."""
    item = await store.aget(namespace(fp), "certification")
    return dict(item.value) if item else None


async def asave_certification(store: BaseStore, fp: str, verdict: dict[str, Any]) -> None:
    """Remember that ``fp`` was certified and with what verdict."""
    await store.aput(namespace(fp), "certification", {**verdict, "certified_at": utc_now()})


def rewards_of(sessions: list[dict[str, Any]]) -> list[float]:
    """Scores of the sessions that were rewarded, oldest first."""
    return [float(s["reward"]) for s in sessions if s.get("reward") is not None]


def summarize(
    fp: str, sessions: list[dict[str, Any]], limit: int, success_threshold: float
) -> dict[str, Any]:
    """What the probe sees: the last ``limit`` sessions, reward mean, lane counts, streaks."""
    recent = sessions[-limit:]
    rewards = rewards_of(recent)
    lanes: dict[str, int] = {}
    for entry in recent:
        lanes[entry["lane"]] = lanes.get(entry["lane"], 0) + 1
    return {
        "fingerprint": fp,
        "session_count": len(sessions),
        "sessions": [
            {key: entry.get(key) for key in ("lane", "reward", "retries", "status")}
            for entry in recent
        ],
        "reward_mean": round(statistics.fmean(rewards), 4) if rewards else None,
        "lanes": lanes,
        "success_streak": _streak(recent, lambda s: _succeeded(s, success_threshold)),
        "failure_streak": _streak(recent, lambda s: not _succeeded(s, success_threshold)),
    }


def _succeeded(entry: dict[str, Any], success_threshold: float) -> bool:
    reward = entry.get("reward")
    passed = reward is None or float(reward) >= success_threshold
    return entry.get("status") == "succeeded" and passed


def _streak(sessions: list[dict[str, Any]], predicate: Any) -> int:
    """How many of the newest sessions in a row satisfy ``predicate``."""
    count = 0
    for entry in reversed(sessions):
        if not predicate(entry):
            break
        count += 1
    return count


def baseline(sessions: list[dict[str, Any]], window: int) -> float | None:
    """Mean reward of the fingerprint's last ``window`` rewarded sessions."""
    rewards = rewards_of(sessions)[-window:]
    return statistics.fmean(rewards) if rewards else None


def _z(value: float, values: list[float]) -> tuple[float, float, float]:
    """Standard score of ``value`` against ``values``: ``(z, mean, stddev)``."""
    mean = statistics.fmean(values)
    spread = statistics.pstdev(values)
    return (value - mean) / max(spread, 1e-6), mean, spread


def _mad_z(value: float, values: list[float]) -> float:
    """The modified z score (Iglewicz and Hoaglin): 0.6745 (x - median) / MAD.

    Robust to a few outliers in the baseline, which the mean and deviation are not.
    """
    median = statistics.median(values)
    mad = statistics.median(abs(item - median) for item in values)
    return 0.6745 * (value - median) / max(mad, 1e-6)


def drift(
    score: float, sessions: list[dict[str, Any]], *, window: int, z_threshold: float,
    min_baseline: int, uncertainty: float | None = None, mad_threshold: float | None = None,
    two_sided: bool = True,
) -> dict[str, Any] | None:  # fmt: skip
    """The drift check of a session against its fingerprint's recent sessions.

    As Atlas does, it looks at |z| of the score and of the reward uncertainty (when both this
    session and enough earlier ones have one), and at their MAD variants (``mad_threshold``).
    With ``two_sided`` false only a score below the mean counts (the older rule). ``None``
    until ``min_baseline`` earlier rewards exist; else the check, with ``alert`` and, when
    it fired, ``reason``. A perfectly steady history has no spread; any move away from it
    then counts (the deviation floor only avoids dividing by zero).
    """
    rewards = rewards_of(sessions)[-window:]
    if len(rewards) < min_baseline:
        return None
    z, mean, spread = _z(score, rewards)
    mad_z = _mad_z(score, rewards)
    check: dict[str, Any] = {
        "z_score": round(z, 3),
        "mad_z_score": round(mad_z, 3),
        "score": score,
        "baseline_mean": round(mean, 4),
        "baseline_stddev": round(spread, 4),
        "window": len(rewards),
        "uncertainty": uncertainty,
        "uncertainty_z_score": None,
        "uncertainty_mad_z_score": None,
        "thresholds": {"z": z_threshold, "mad_z": mad_threshold, "two_sided": two_sided},
        "alert": False,
    }
    reasons: list[str] = []
    score_off = abs(z) >= z_threshold if two_sided else z <= -z_threshold and score < mean
    if score_off and score != mean:
        direction = "below" if score < mean else "above"
        reasons.append(
            f"reward drift: score {score:.2f} is {abs(z):.1f} standard deviations {direction} "
            f"the fingerprint's mean {mean:.2f} over its last {len(rewards)} rewarded sessions "
            f"(threshold {z_threshold:g})"
        )
    if mad_threshold is not None and (abs(mad_z) if two_sided else -mad_z) >= mad_threshold:
        reasons.append(f"reward drift (MAD): modified z {mad_z:.1f} (threshold {mad_threshold:g})")
    past = [float(s["uncertainty"]) for s in sessions if s.get("uncertainty") is not None]
    past = past[-window:]
    if uncertainty is not None and len(past) >= min_baseline:
        u_z, u_mean, _ = _z(uncertainty, past)
        u_mad = _mad_z(uncertainty, past)
        check["uncertainty_z_score"] = round(u_z, 3)
        check["uncertainty_mad_z_score"] = round(u_mad, 3)
        if abs(u_z) >= z_threshold and uncertainty != u_mean:
            reasons.append(
                f"uncertainty drift: {uncertainty:.2f} is {abs(u_z):.1f} standard deviations "
                f"from the mean {u_mean:.2f} (threshold {z_threshold:g})"
            )
        if mad_threshold is not None and abs(u_mad) >= mad_threshold:
            reasons.append(
                f"uncertainty drift (MAD): modified z {u_mad:.1f} (threshold {mad_threshold:g})"
            )
    if reasons:
        check["alert"] = True
        check["reason"] = "; ".join(reasons)
    return check


# Renamed when async functions took the ``a`` prefix; removed in the next release.
load_sessions = renamed(aload_sessions, "load_sessions")
append_session = renamed(aappend_session, "append_session")
load_certification = renamed(aload_certification, "load_certification")
save_certification = renamed(asave_certification, "save_certification")
