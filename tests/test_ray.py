"""Batches on a real multi-node Ray cluster (``ray.cluster_utils.Cluster``) with PostgreSQL.

The cluster is a head node with no CPU (so no worker ever runs on it and it survives every
test) and three worker nodes of one CPU each, all processes on this machine. Sessions run the
offline demo with ``ray_agent.student``, which logs each finished call with its node.

Without Ray the cluster tests skip, unless ``ATLAS_GRAPH_REQUIRE_RAY=1`` (CI) makes that a
failure; the install hint of ``--ray`` is checked with Ray hidden.
Each batch runs under a time bound; the node-killing test runs last, as it leaves two nodes.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from atlas_graph.cli import EXIT_USAGE, main
from atlas_graph.demo import DEMO_TASKS, demo_config_path
from atlas_graph.errors import RayNotInstalledError
from atlas_graph.evaluation.batch import EvalReport, aevaluate, evaluate, read_results
from atlas_graph.sessions import alist_sessions

pytestmark = pytest.mark.ray

TESTS = Path(__file__).resolve().parent
WORKER_NODES = 3
BATCH_LIMIT_SECONDS = 240.0  # a bound on each batch, not an assertion on speed
HOLD_LIMIT_SECONDS = 120.0
ESCALATE_TASK = dict(DEMO_TASKS)["escalate"]
# Ray notices a dead node within seconds instead of the default half minute
FAST_FAILURE = {"health_check_period_ms": 500, "health_check_failure_threshold": 3}


def ray_required() -> bool:
    """Whether missing Ray is a failure rather than a skip (CI)."""
    return os.environ.get("ATLAS_GRAPH_REQUIRE_RAY", "") not in ("", "0", "false")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """A head without CPUs and three one-CPU worker nodes; this process is the driver."""
    try:
        import ray
        from ray.cluster_utils import Cluster
    except ImportError:
        if ray_required():
            pytest.fail("Ray is not installed (ATLAS_GRAPH_REQUIRE_RAY=1)", pytrace=False)
        pytest.skip("Ray is not installed (pip install -e '.[ray]')")
    started = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "include_dashboard": False, "_system_config": FAST_FAILURE},
    )
    try:
        for _ in range(WORKER_NODES):
            started.add_node(num_cpus=1)
        started.wait_for_nodes()
        ray.init(address=started.address, logging_level="ERROR", log_to_driver=False)
        yield started
    finally:
        ray.shutdown()
        started.shutdown()


def test_without_ray_the_flag_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "ray" else real_find_spec(name, *a),
    )
    task_file = tmp_path / "tasks.jsonl"
    task_file.write_text('{"task": "Add 19 and 23."}\n', encoding="utf-8")
    code = main(["eval", str(task_file), "--config", str(demo_config_path()), "--ray", "local",
                 "--output", str(tmp_path / "out.jsonl")])  # fmt: skip
    assert code == EXIT_USAGE
    assert capsys.readouterr().err == (
        "atlas-graph: --ray needs Ray: pip install 'atlas-graph[ray]'\n"
    )
    assert not (tmp_path / "out.jsonl").exists()
    with pytest.raises(RayNotInstalledError, match=r"^the Ray executor needs Ray: pip install"):
        evaluate([{"task": "Add 19 and 23."}], config={"storage": {"database_url": "x=y"}},
                 executor="ray")  # fmt: skip


def ray_config(pg_url: str) -> dict[str, Any]:
    """The offline demo with the logging student, on the test database."""
    config = yaml.safe_load(demo_config_path().read_text(encoding="utf-8"))
    config["agent"].update(
        import_path="ray_agent", attribute="student", working_directory=str(TESTS)
    )
    config["storage"] = {"database_url": pg_url}
    return config


def tasks(prefix: str, count: int, log: Path, **extra: Any) -> list[dict[str, Any]]:
    """``count`` demo tasks over the four lanes, each logging its calls to ``log``."""
    rows = []
    for number in range(count):
        lane, task = DEMO_TASKS[number % len(DEMO_TASKS)]
        rows.append({"id": f"{prefix}-{number}", "task": task, "mode": lane,
                     "session_metadata": {"log": str(log)}})  # fmt: skip
    return rows


def calls(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


def result_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


async def bounded(coroutine: Any) -> EvalReport:
    return await asyncio.wait_for(coroutine, BATCH_LIMIT_SECONDS)


async def ledger(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The ledger records, by session id."""
    return {row["session_id"]: row for row in await alist_sessions(config, limit=10_000)}


async def test_sessions_spread_over_the_nodes_and_every_result_comes_once(
    cluster: Any, pg_url: str, tmp_path: Path
) -> None:
    log, output = tmp_path / "calls.jsonl", tmp_path / "results.jsonl"
    config = ray_config(pg_url)
    rows = tasks("spread", 12, log)

    report = await bounded(
        aevaluate(rows, config=config, output=output, concurrency=2, executor="ray")
    )

    lines = result_lines(output)
    assert sorted(line["id"] for line in lines) == sorted(row["id"] for row in rows)
    assert {line["status"] for line in lines} == {"succeeded"}
    assert (report.ran, report.skipped, report.summary.total.succeeded) == (12, 0, 12)
    sessions = {line["session_id"] for line in lines}
    nodes = {call["node"] for call in calls(log)}
    assert len(nodes) == WORKER_NODES  # one worker per CPU, spread over every node
    assert {call["session"] for call in calls(log)} == sessions
    recorded = await ledger(config)
    assert {sid: recorded[sid]["status"] for sid in sessions} == dict.fromkeys(
        sessions, "succeeded"
    )

    rerun = await bounded(aevaluate(rows, config=config, output=output, executor="ray"))
    assert (rerun.ran, rerun.skipped) == (0, 12)
    assert len(result_lines(output)) == 12


async def test_storage_that_workers_cannot_share_is_refused_before_anything_runs(
    cluster: Any, tmp_path: Path
) -> None:
    from atlas_graph.errors import SharedStorageError

    config = {**ray_config("postgresql://unused"), "storage": {"backend": "sqlite"}}
    with pytest.raises(SharedStorageError, match=r"^--ray needs PostgreSQL storage .*sqlite"):
        await aevaluate(tasks("x", 1, tmp_path / "log"), config=config, executor="ray")
    config["storage"] = {"backend": "memory"}
    with pytest.raises(SharedStorageError, match=r"storage\.backend memory cannot be shared"):
        await aevaluate(tasks("x", 1, tmp_path / "log"), config=config, executor="ray")


async def test_a_worker_that_cannot_open_the_storage_stops_the_batch_with_its_error(
    cluster: Any, pg_url: str, tmp_path: Path
) -> None:
    from atlas_graph.storage.persistence import StorageError

    missing = pg_url.rsplit("/", 1)[0] + "/atlas_graph_no_such_database"
    output = tmp_path / "results.jsonl"
    batch = aevaluate(
        tasks("nodb", 2, tmp_path / "log"),
        config=ray_config(missing),
        output=output,
        executor="ray",
    )
    with pytest.raises(StorageError, match=r"^cannot connect to PostgreSQL at .*no_such_database"):
        await bounded(batch)
    assert not output.exists() or output.read_text() == ""


async def test_a_node_killed_mid_batch_loses_and_repeats_nothing(
    cluster: Any, pg_url: str, tmp_path: Path
) -> None:
    log, output, hold = tmp_path / "calls.jsonl", tmp_path / "results.jsonl", tmp_path / "hold"
    config = ray_config(pg_url)
    rows = tasks("kill", 12, log)
    held = {"id": "held", "task": ESCALATE_TASK, "mode": "escalate",
            "session_metadata": {"log": str(log), "hold": str(hold)}}  # fmt: skip
    rows.insert(1, held)

    # one session per worker: the killed node then holds only the held session mid-flight
    batch = asyncio.ensure_future(
        bounded(aevaluate(rows, config=config, output=output, concurrency=1, executor="ray"))
    )
    deadline = time.monotonic() + HOLD_LIMIT_SECONDS
    while not hold.exists() or not hold.read_text():
        assert not batch.done(), batch.result()
        assert time.monotonic() < deadline, "the held session never reached step 1"
        await asyncio.sleep(0.1)
    node_id = hold.read_text()
    victim = next(node for node in cluster.worker_nodes if node.node_id == node_id)
    cluster.remove_node(victim, allow_graceful=False)
    report = await batch

    lines = result_lines(output)
    assert Counter(line["id"] for line in lines) == Counter(row["id"] for row in rows)
    assert {line["status"] for line in lines} == {"succeeded"}, [
        line["error"] for line in lines if line["error"]
    ]
    assert report.summary.total.succeeded == len(rows)
    by_id = read_results(output)
    assert by_id["held"]["final_answer"].startswith("1648")
    session = by_id["held"]["session_id"]
    recorded = await ledger(config)
    sessions = {line["session_id"] for line in lines}
    assert {sid: recorded[sid]["status"] for sid in sessions} == dict.fromkeys(
        sessions, "succeeded"
    )

    finished = calls(log)
    keys = Counter((c["session"], c["mode"], c["step"], c["attempt"], c["round"]) for c in finished)
    assert [key for key, times in keys.items() if times > 1] == []  # no finished call twice
    mine = [call for call in finished if call["session"] == session]
    assert [call["mode"] for call in mine].count("planning") == 1  # resumed after the plan
    assert {call["node"] for call in mine if call["mode"] == "planning"} == {node_id}
    assert node_id not in {call["node"] for call in mine if call["step"] == 1}
