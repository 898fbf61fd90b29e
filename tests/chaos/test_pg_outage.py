"""PostgreSQL stopped under running sessions: one-line exit-3 errors, every session resumes.

A throwaway cluster on its own port (``pgcluster.py``) is stopped and started by the tests;
the shared server is never touched.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from pgcluster import Cluster

from atlas_graph.cli import main
from atlas_graph.config import StorageConfig
from atlas_graph.errors import StorageFaultError
from atlas_graph.runner import arun
from atlas_graph.sessions import alist_sessions, ashow_session
from atlas_graph.storage.persistence import aopen_persistence
from atlas_graph.testing import ScriptedAgent

pytestmark = pytest.mark.chaos

PLAN = [
    {"id": 1, "description": "Add 1200 and 340.", "depends_on": []},
    {"id": 2, "description": "Multiply 12 by 9.", "depends_on": []},
]


def config(cluster: Cluster) -> dict[str, Any]:
    return {
        "teacher": {"validator": "atlas_graph.demo:validator"},
        "storage": {"database_url": cluster.url, "pool_timeout_seconds": 2, "max_size": 4},
    }


def agent(on_call: Any = None) -> ScriptedAgent:
    answers = {1: "1540", 2: "108"}

    def outputs(request: Any) -> str:
        if on_call is not None:
            on_call()
        step = request["step"]["id"] if isinstance(request, dict) else request.step["id"]
        return answers[int(step)]

    return ScriptedAgent(plan=PLAN, outputs=outputs, synthesis="1540 and 108")


def claim_connections(cluster: Cluster) -> int:
    """Connections still open from this process's claims (none once storage is closed)."""
    import psycopg

    with psycopg.connect(cluster.url, autocommit=True) as connection:
        row = connection.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE %s",
            (f"atlas-graph claims pid {os.getpid()} %",),
        ).fetchone()
    return int(row[0]) if row else 0


async def test_an_outage_longer_than_the_pool_timeout_is_a_one_line_exit_3(
    cluster: Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str], chaos_record: Any
) -> None:
    calls: list[int] = []

    def stop_once() -> None:
        calls.append(1)
        if len(calls) == 1:
            cluster.stop()

    started = time.monotonic()
    try:
        with pytest.raises(StorageFaultError) as stopped:
            await arun("Add 1200 and 340.", config=config(cluster), mode="paired",
                       thread_id="outage-1", agent=agent(stop_once))  # fmt: skip
        message = str(stopped.value)
        assert "\n" not in message and "run thread outage-1 again" in message
        assert time.monotonic() - started < 30  # the handler does not wait on the dead database
        path = tmp_path / "pg.yaml"
        path.write_text(json.dumps(config(cluster)))
        assert main(["resume", "outage-1", "-c", str(path)]) in (2, 3)  # down: one line
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err
    finally:
        cluster.start()
    result = await arun(None, config=config(cluster), thread_id="outage-1", agent=agent())
    assert result.status == "succeeded", result.model_dump_json()[:1500]
    leaked = claim_connections(cluster)
    assert leaked == 0
    chaos_record("PostgreSQL stopped mid-step, longer than the pool timeout", 1,
                 "StorageFaultError, one line, exit 3; resumed to succeeded",
                 leaked=leaked)  # fmt: skip


async def test_sessions_running_through_a_restart_all_resume(
    cluster: Cluster, chaos_record: Any
) -> None:
    trials = 9
    restarted = asyncio.Event()
    calls: list[int] = []

    def restart_once() -> None:
        calls.append(1)
        if len(calls) == trials:  # every session is inside its first step
            cluster.stop()
            time.sleep(1.0)
            cluster.start()
            restarted.set()

    async with aopen_persistence(StorageConfig.model_validate(config(cluster)["storage"])) as db:
        outcomes = await asyncio.gather(*(
            arun("Do the sums.", config=config(cluster), mode="escalate", thread_id=f"r-{n}",
                 agent=agent(restart_once), persistence=db,
                 models={"teacher": _reviewer()})
            for n in range(trials)
        ), return_exceptions=True)  # fmt: skip
    assert restarted.is_set()
    stopped = [o for o in outcomes if isinstance(o, BaseException)]
    assert all(isinstance(o, StorageFaultError) for o in stopped), stopped
    for n in range(trials):  # every session: finished, or resumable and then finished
        thread = f"r-{n}"
        async with aopen_persistence(
            StorageConfig.model_validate(config(cluster)["storage"])
        ) as db:
            view = await ashow_session(thread, config(cluster), persistence=db)
            if not view["finished"]:
                result = await arun(None, config=config(cluster), thread_id=thread,
                                    agent=agent(), persistence=db,
                                    models={"teacher": _reviewer()})  # fmt: skip
                assert result.status == "succeeded"
            view = await ashow_session(thread, config(cluster), persistence=db)
            assert view["finished"] and view["ledger"]["status"] == "succeeded"
    async with aopen_persistence(StorageConfig.model_validate(config(cluster)["storage"])) as db:
        rows = await alist_sessions(config(cluster), persistence=db)
    assert sorted(row["status"] for row in rows if row["session_id"].startswith("r-")) == [
        "succeeded"] * trials  # fmt: skip
    chaos_record("PostgreSQL restarted (1 s) under 9 concurrent sessions", trials,
                 f"{len(stopped)} stopped with StorageFaultError, all resumed to succeeded",
                 lost=0, leaked=claim_connections(cluster))  # fmt: skip


def _reviewer() -> Any:
    from langchain_core.messages import BaseMessage

    from atlas_graph.testing import ScriptedChatModel

    def respond(messages: list[BaseMessage]) -> str:
        return json.dumps({"approved": True, "concerns": []})

    return ScriptedChatModel(responder=respond)


async def test_a_second_runner_on_postgres_is_refused_naming_the_holder(
    cluster: Cluster, chaos_record: Any
) -> None:
    from faults import held_elsewhere

    from atlas_graph.errors import ThreadBusyError

    await arun("Add 1200 and 340.", config=config(cluster), mode="paired", thread_id="pg-busy",
               agent=agent())  # fmt: skip
    with held_elsewhere("postgres", cluster.url, "pg-busy") as holder:
        with pytest.raises(ThreadBusyError, match=f"pid {holder.pid} on host") as refused:
            await arun(None, config=config(cluster), thread_id="pg-busy", agent=agent())
        assert "\n" not in str(refused.value)
        # another thread runs meanwhile: the claim is per thread
        other = await arun("Add 1200 and 340.", config=config(cluster), mode="paired",
                           thread_id="pg-free", agent=agent())  # fmt: skip
        assert other.status == "succeeded"
    with pytest.raises(Exception, match="already finished"):  # released: the thread is free
        await arun(None, config=config(cluster), thread_id="pg-busy", agent=agent())
    chaos_record("second runner on a PostgreSQL thread held by another process", 1,
                 "ThreadBusyError naming pid and host; other threads ran",
                 leaked=claim_connections(cluster))  # fmt: skip


async def test_nan_metadata_on_postgres_is_refused_and_the_thread_stays_usable(
    cluster: Cluster, chaos_record: Any
) -> None:
    from atlas_graph.errors import AtlasInputError

    for bad in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(AtlasInputError, match=r"session_metadata\.score"):
            await arun("Add 1200 and 340.", config=config(cluster), mode="paired",
                       thread_id="pg-nan", agent=agent(),
                       session_metadata={"score": bad})  # fmt: skip
    result = await arun("Add 1200 and 340.", config=config(cluster), mode="paired",
                        thread_id="pg-nan", agent=agent(),
                        session_metadata={"score": 1.0})  # fmt: skip
    assert result.status == "succeeded"
    chaos_record("NaN / Infinity in session metadata on PostgreSQL", 3,
                 "AtlasInputError naming the key; the thread then ran")  # fmt: skip
