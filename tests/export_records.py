"""Ledger records for export tests: real ones from demo sessions, and clones of them.

Cloning a record a real session wrote keeps every test honest about the ledger's shape while
making thousands of sessions cheap (no graph runs).
"""

from __future__ import annotations

import copy
from typing import Any

from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore

from atlas_graph.demo import DEMO_TASKS, demo_config_path
from atlas_graph.runner import arun
from atlas_graph.storage.ledger import NAMESPACE
from atlas_graph.storage.persistence import Persistence

# Secrets a caller might leak into a session; none may reach an export.
SECRETS = {
    "api_key": "sk-proj-abcdefghijklmnopqrstuvwxyz012345",
    "bearer": "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXBheWxvYWQ",
    "dsn_password": "hunter2-dsn-pass",
    "langsmith": "lsv2_pt_0123456789abcdef0123456789abcdef",
}
SECRET_METADATA: dict[str, Any] = {
    "team": "search",
    "openai_api_key": SECRETS["api_key"],
    "headers": {"Authorization": f"Bearer {SECRETS['bearer']}"},
    "database_url": f"postgresql://atlas:{SECRETS['dsn_password']}@db.internal:5432/atlas",
    "note": f"called with LANGSMITH_API_KEY={SECRETS['langsmith']}",
}


def demo_config(**overrides: Any) -> dict[str, Any]:
    """The offline demo config as a dict, with its agent carrying secrets in config."""
    import yaml

    config: dict[str, Any] = yaml.safe_load(demo_config_path().read_text(encoding="utf-8"))
    config["metadata"] = {**config.get("metadata", {}), "vendor_token": SECRETS["api_key"]}
    config["agent"]["system_prompt"] += f" Internal key {SECRETS['api_key']} is not for users."
    config.update(overrides)
    return config


async def run_demo_lanes(persistence: Persistence, *, prefix: str) -> dict[str, str]:
    """Run the four demo lanes into ``persistence``; returns ``{lane: session_id}``."""
    sessions: dict[str, str] = {}
    for lane, task in DEMO_TASKS:
        result = await arun(
            task, config=demo_config(), mode=lane, thread_id=f"{prefix}-{lane}",
            session_metadata=SECRET_METADATA, persistence=persistence,
        )  # fmt: skip
        assert result.status == "succeeded", (lane, result.status)
        sessions[lane] = result.session_id
    return sessions


async def escalate_record() -> dict[str, Any]:
    """The ledger record of one real escalate demo session (3 steps), holding no secrets."""
    from langgraph.checkpoint.memory import InMemorySaver

    store = InMemoryStore()
    lane, task = DEMO_TASKS[3]
    await arun(task, config=demo_config_path(), mode=lane, thread_id="template",
               persistence=Persistence(InMemorySaver(), store, "memory"))  # fmt: skip
    item = await store.aget(NAMESPACE, "template")
    assert item is not None
    return dict(item.value)


def clone(record: dict[str, Any], session_id: str, **fields: Any) -> dict[str, Any]:
    """A copy of ``record`` as another session; ``score`` sets the session reward."""
    copied = copy.deepcopy(record)
    copied.update(session_id=session_id, thread_id=session_id)
    score = fields.pop("score", "keep")
    if score != "keep":
        copied["reward"] = None if score is None else {**(copied["reward"] or {}), "score": score}
        copied["reward_summary"] = None if score is None else {"score": score, "judges": 1}
    copied.update(fields)
    return copied


def put_records(store: BaseStore, records: list[dict[str, Any]]) -> None:
    """Write records into the ledger namespace (sync store)."""
    for record in records:
        store.put(NAMESPACE, record["session_id"], record, index=False)
