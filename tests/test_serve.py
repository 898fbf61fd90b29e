"""Serving: ``atlas_graph.server:graph`` under ``langgraph dev``, driven through
``langgraph-sdk``, and the production image's ``langgraph dockerfile``.

The server runs on a free loopback port from a temporary copy of ``langgraph.json`` and
``graphs/`` (its in-memory runtime writes ``.langgraph_api/`` into its working directory), with
analytics, tracing, license and version checks off, so nothing leaves the machine. It serves a
config with ``teacher.plan_approval: human`` named by ``ATLAS_GRAPH_CONFIG``: the approval
round trip proves the variable reached the server's graph.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import runpy
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from langgraph.checkpoint.memory import InMemorySaver

from atlas_graph.config import ConfigError
from atlas_graph.demo import demo_config_path
from atlas_graph.serve import served_graph

ROOT = Path(__file__).resolve().parent.parent
GRAPH_MODULE = ROOT / "graphs" / "atlas.py"
COACH_TASK = "Add the latencies 120, 80 and 45 and report the total in ms."
STARTUP_LIMIT_SECONDS = 120.0  # a bound on the readiness poll, not an assertion on speed
# variables that would make the server or its tracer talk to the outside world
OUTSIDE = (
    "LANGSMITH_API_KEY", "LANGCHAIN_API_KEY", "LANGSMITH_CONTROL_PLANE_API_KEY",
    "LANGGRAPH_CLOUD_LICENSE_KEY", "LANGSMITH_ENDPOINT", "LANGCHAIN_ENDPOINT",
    "LANGSMITH_TENANT_ID", "LANGGRAPH_AUTH_TYPE", "REDIS_URI", "DATABASE_URI",
)  # fmt: skip
HERMETIC = {
    "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    "LANGGRAPH_NO_VERSION_CHECK": "true",
    "LANGSMITH_TRACING": "false",
    "LANGCHAIN_TRACING_V2": "false",
    "NO_COLOR": "1",
    "PYTHONUNBUFFERED": "1",
}


def human_approval_config(directory: Path) -> Path:
    """The offline demo's config with plan approval by a person."""
    config = yaml.safe_load(demo_config_path().read_text(encoding="utf-8"))
    config["teacher"]["plan_approval"] = "human"
    path = directory / "human_approval.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def load_served_graph() -> Any:
    """``graphs/atlas.py`` loaded afresh, as the server loads it."""
    return runpy.run_path(str(GRAPH_MODULE))["graph"]


# ----------------------------------------------------------------------------- in process


def test_served_graph_without_a_config_refuses_to_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ATLAS_GRAPH_CONFIG", raising=False)
    refusal = r"^ATLAS_GRAPH_CONFIG is not set: name the config file to serve, or set .*=demo"
    with pytest.raises(ConfigError, match=refusal):
        load_served_graph()
    with pytest.raises(ConfigError, match=refusal):
        served_graph({"ATLAS_GRAPH_CONFIG": "  "})


async def test_served_graph_serves_the_offline_demo_when_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ATLAS_GRAPH_CONFIG", "demo")
    graph = load_served_graph()
    assert (graph.checkpointer, graph.store, graph.name) == (None, None, "atlas-graph")
    out = await graph.ainvoke({"task": COACH_TASK, "mode": "coach"})
    assert (out["final_answer"], out["status"]) == ("245 ms", "succeeded")
    # the module langgraph.json names builds the same graph when the server imports it
    monkeypatch.delitem(sys.modules, "atlas_graph.server", raising=False)
    served = importlib.import_module("atlas_graph.server").graph
    assert (served.name, served.checkpointer) == ("atlas-graph", None)
    assert set(served.nodes) == set(graph.nodes)


async def test_served_graph_reads_its_config_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ATLAS_GRAPH_CONFIG", str(human_approval_config(tmp_path)))
    graph = load_served_graph()
    graph.checkpointer = InMemorySaver()  # an interrupt needs one; the server brings its own
    out = await graph.ainvoke(
        {"task": COACH_TASK, "mode": "coach"}, {"configurable": {"thread_id": "env-1"}}
    )
    assert out["__interrupt__"][0].value["type"] == "plan_approval"


def test_a_bad_config_in_the_environment_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ATLAS_GRAPH_CONFIG", str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match=r"^ATLAS_GRAPH_CONFIG: .*missing\.yaml: file not found"):
        load_served_graph()


def test_a_context_of_names_instead_of_objects_is_refused() -> None:
    from atlas_graph.services import AtlasContext
    from atlas_graph.testing import ScriptedChatModel

    with pytest.raises(TypeError, match=r"models\['judge'\] is a dict, not a chat model"):
        AtlasContext(models={"judge": {"model": "gpt-4o"}})
    with pytest.raises(TypeError, match=r"context agent is a str, not an agent"):
        AtlasContext(agent="my-agent")
    model = ScriptedChatModel(responses=["ok"])
    assert AtlasContext(models={"judge": model}, agent=lambda request: "ok").models == {
        "judge": model
    }


# ----------------------------------------------------------------------------- langgraph dev


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class DevServer:
    """A ``langgraph dev`` process and the lines it printed."""

    def __init__(self, workdir: Path, config: Path | None) -> None:
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in OUTSIDE and key != "ATLAS_GRAPH_CONFIG"
        }
        env.update(HERMETIC)
        if config is not None:
            env["ATLAS_GRAPH_CONFIG"] = str(config)
        port = _free_port()
        command = [
            sys.executable, "-c", "from langgraph_cli.cli import cli; cli()", "dev",
            "--host", "127.0.0.1", "--port", str(port), "--no-browser", "--no-reload",
        ]  # fmt: skip
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.url = f"http://127.0.0.1:{port}"

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(re.sub(r"\x1b\[[0-9;]*m", "", line.rstrip()))

    def log(self) -> str:
        return "\n".join(self.lines[-40:])

    def wait_ready(self) -> None:
        """Poll until the server answers, within a bound; its own URL wins (it may move)."""
        deadline = time.monotonic() + STARTUP_LIMIT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"langgraph dev exited early:\n{self.log()}")
            announced = [m for line in self.lines if (m := re.search(r"API: (http\S+)", line))]
            if announced:
                self.url = announced[-1].group(1)
                try:
                    if httpx.get(f"{self.url}/ok", timeout=2).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
            time.sleep(0.2)
        raise RuntimeError(
            f"langgraph dev not ready in {STARTUP_LIMIT_SECONDS:.0f}s:\n{self.log()}"
        )

    def stop(self) -> None:
        """End the server's process group (only what this test started)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._reader.join(timeout=5)


def served_copy(workdir: Path) -> Path:
    """``langgraph.json`` and ``graphs/`` in ``workdir``, or a skip without the packages."""
    # looked up, not imported: importing the in-memory runtime creates .langgraph_api/ in the
    # working directory, which is the server's business (in its own temporary directory)
    for module, package in (
        ("langgraph_cli", "langgraph-cli[inmem]"),
        ("langgraph_runtime_inmem", "langgraph-cli[inmem]"),
        ("langgraph_sdk", "langgraph-sdk"),
    ):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{package} is not installed (pip install -e '.[dev]')")
    shutil.copy(ROOT / "langgraph.json", workdir / "langgraph.json")
    shutil.copytree(ROOT / "graphs", workdir / "graphs")
    return workdir


def _refused_start(workdir: Path, config: Path | None) -> str:
    running = DevServer(workdir, config)
    try:
        with pytest.raises(RuntimeError, match="exited early") as stopped:
            running.wait_ready()
    finally:
        running.stop()
    return str(stopped.value)


def test_langgraph_dev_will_not_start_with_a_bad_config(tmp_path: Path) -> None:
    log = _refused_start(served_copy(tmp_path), tmp_path / "missing.yaml")
    assert "ATLAS_GRAPH_CONFIG: " in log
    assert "missing.yaml: file not found" in log


def test_langgraph_dev_will_not_start_without_a_config(tmp_path: Path) -> None:
    log = _refused_start(served_copy(tmp_path), None)
    assert "ATLAS_GRAPH_CONFIG is not set" in log


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    workdir = served_copy(tmp_path_factory.mktemp("serve"))
    running = DevServer(workdir, human_approval_config(workdir))
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


async def _stream(client: Any, thread_id: str, **run: Any) -> tuple[list[dict], list[str]]:
    """Atlas events and updated node names of one streamed run."""
    events: list[dict[str, Any]] = []
    nodes: list[str] = []
    async for part in client.runs.stream(
        thread_id, "atlas", stream_mode=["custom", "updates"], **run
    ):
        if part.event == "error":
            raise AssertionError(f"the run failed: {part.data}")
        if part.event == "custom" and isinstance(part.data, dict) and "atlas_event" in part.data:
            events.append(part.data)
        elif part.event == "updates":
            nodes.extend(part.data)
    return events, nodes


async def test_served_run_streams_events_and_keeps_state_history_and_ledger(
    server: DevServer,
) -> None:
    from langgraph_sdk import get_client

    client = get_client(url=server.url)
    thread_id = (await client.threads.create())["thread_id"]
    events, nodes = await _stream(
        client, thread_id, input={"task": "Multiply 17 by 23.", "mode": "paired"}
    )

    by_name = {event["atlas_event"]: event for event in events}
    assert by_name["lane_decided"]["data"]["lane"] == "paired"
    assert by_name["tool_call"]["data"]["tool"] == "calculate"
    assert by_name["final_answer"]["data"]["answer"] == "391"
    assert by_name["session_finished"]["data"]["status"] == "succeeded"
    assert {event["session_id"] for event in events} == {thread_id}
    assert nodes[0] == "triage" and nodes[-1] == "finalize"

    state = await client.threads.get_state(thread_id)
    assert state["next"] == []
    values = state["values"]
    assert (values["final_answer"], values["status"], values["lane"]) == (
        "391",
        "succeeded",
        "paired",
    )
    assert values["session_id"] == thread_id

    history = await client.threads.get_history(thread_id, limit=50)
    assert len(history) >= len(nodes)
    assert history[0]["checkpoint"]["checkpoint_id"] == state["checkpoint"]["checkpoint_id"]
    assert history[-1]["next"] == ["__start__"]  # oldest first at the end: the input
    lanes = [entry["values"].get("lane") for entry in reversed(history)]
    assert lanes[0] is None and lanes[-1] == "paired"

    # the nodes wrote the session ledger into the server's store through runtime.store
    record = await client.store.get_item(["atlas", "sessions"], key=thread_id)
    assert record is not None
    assert (record["value"]["status"], record["value"]["final_answer"]) == ("succeeded", "391")


async def test_served_plan_approval_through_interrupt_and_resume(server: DevServer) -> None:
    from langgraph_sdk import get_client

    client = get_client(url=server.url)
    thread_id = (await client.threads.create())["thread_id"]
    events, _ = await _stream(client, thread_id, input={"task": COACH_TASK, "mode": "coach"})
    assert events[-1]["atlas_event"] == "plan_approval_requested"
    assert (await client.threads.get(thread_id))["status"] == "interrupted"
    waiting = await client.threads.get_state(thread_id)
    assert waiting["next"] == ["review"]
    request = waiting["tasks"][0]["interrupts"][0]["value"]
    assert request["type"] == "plan_approval" and request["session_id"] == thread_id
    assert request["actions"] == ["approve", "edit", "reject"]

    events, nodes = await _stream(
        client, thread_id, command={"resume": {"action": "approve", "notes": "looks right"}}
    )
    assert nodes[0] == "review"  # the decision is applied where the session paused
    assert "plan_ready" not in {event["atlas_event"] for event in events}  # no redraft
    assert events[-2]["data"]["answer"] == "245 ms"
    done = (await client.threads.get_state(thread_id))["values"]
    assert done["status"] == "succeeded"
    assert (done["plan_approval"]["status"], done["plan_approval"]["notes"]) == (
        "approved",
        "looks right",
    )
    assert (await client.threads.get(thread_id))["status"] == "idle"


async def test_served_schemas_describe_input_output_and_context(server: DevServer) -> None:
    from langgraph_sdk import get_client

    client = get_client(url=server.url)
    assistant = (await client.assistants.search(graph_id="atlas"))[0]
    schemas = await client.assistants.get_schemas(assistant["assistant_id"])
    assert schemas["input_schema"]["required"] == ["task"]
    assert set(schemas["input_schema"]["properties"]) == {"task", "session_metadata", "mode"}
    assert {"final_answer", "status", "lane", "reward", "session_id"} <= set(
        schemas["output_schema"]["properties"]
    )
    assert schemas["context_schema"]["properties"] == {}  # models and agent are Python objects


async def _error_of(client: Any, **run: Any) -> str:
    """The error a run reports through the stream (it fails before any node work)."""
    thread_id = (await client.threads.create())["thread_id"]
    errors = [
        str(part.data)
        async for part in client.runs.stream(thread_id, "atlas", stream_mode=["custom"], **run)
        if part.event == "error"
    ]
    assert len(errors) == 1, errors
    assert (await client.threads.get(thread_id))["status"] == "error"
    return errors[0]


async def test_served_runs_with_unusable_input_or_context_say_what_is_wrong(
    server: DevServer,
) -> None:
    from langgraph_sdk import get_client

    client = get_client(url=server.url)
    no_task = await _error_of(client, input={"question": "Multiply 17 by 23."})
    assert "needs 'task', a non-empty string" in no_task
    # names cannot stand in for models over HTTP: the context holds Python objects
    named_model = await _error_of(
        client,
        input={"task": "Multiply 17 by 23.", "mode": "paired"},
        context={"models": {"teacher": "gpt-4o"}},
    )
    assert "context models['teacher'] is a str, not a chat model" in named_model


# ----------------------------------------------------------------------------- the image


def test_langgraph_dockerfile_installs_the_package_and_serves_its_graph(tmp_path: Path) -> None:
    if importlib.util.find_spec("langgraph_cli") is None:
        pytest.skip("langgraph-cli is not installed (pip install -e '.[dev]')")
    target = tmp_path / "Dockerfile"
    env = {key: value for key, value in os.environ.items() if key not in OUTSIDE}
    done = subprocess.run(
        [sys.executable, "-c", "from langgraph_cli.cli import cli; cli()", "dockerfile",
         "-c", str(ROOT / "langgraph.json"), str(target)],
        cwd=tmp_path, env={**env, **HERMETIC}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = target.read_text(encoding="utf-8")
    project = f"/deps/{ROOT.name}"
    assert text.startswith("FROM langchain/langgraph-api:3.11")
    assert f"ADD . {project}\n" in text  # the whole project, minus what .dockerignore names
    assert "-c /api/constraints.txt -e .)" in text  # installed with its pyproject dependencies
    graphs = re.search(r"ENV LANGSERVE_GRAPHS='(.*)'", text)
    assert graphs is not None and json.loads(graphs.group(1)) == {
        "atlas": "atlas_graph.server:graph"
    }
    assert text.rstrip().endswith(f"WORKDIR {project}")  # relative config paths start here
    assert "ATLAS_GRAPH_CONFIG" not in text and ".env" not in text  # the deployment's choice


def test_dockerignore_keeps_local_state_secrets_and_caches_out_of_the_image() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for kept_out in (".venv/", ".ci-venv/", ".atlas_graph/", ".langgraph_api/", ".env",
                     "**/*.sqlite", "**/__pycache__/", ".pytest_cache/", ".ruff_cache/",
                     "bench/", "notebooks/", "**/.ipynb_checkpoints/", ".git/"):  # fmt: skip
        assert kept_out in patterns
    assert "!.env.example" in patterns
    for needed in ("atlas_graph/", "graphs/", "configs/", "pyproject.toml", "README.md"):
        assert needed not in patterns


async def test_served_fork_with_plain_update_state_continues(server: DevServer) -> None:
    """Studio's fork: ``client.threads.update_state`` at a checkpoint the probe wrote."""
    from langgraph_sdk import get_client

    client = get_client(url=server.url)
    thread_id = (await client.threads.create())["thread_id"]
    await _stream(client, thread_id, input={"task": "Multiply 17 by 23.", "mode": "paired"})
    history = await client.threads.get_history(thread_id, limit=50)
    after_probe = next(
        entry for entry in history
        if entry["next"] == ["execute"] and entry["values"].get("lane") == "paired"
    )  # fmt: skip
    forked = await client.threads.update_state(
        thread_id, {"lane": "escalate"},
        checkpoint_id=after_probe["checkpoint"]["checkpoint_id"],
    )  # fmt: skip
    state = await client.threads.get_state(thread_id)
    assert state["checkpoint"]["checkpoint_id"] == forked["checkpoint"]["checkpoint_id"]
    assert state["next"] == ["plan"]  # the new lane plans first: the fork goes on
    events, nodes = await _stream(client, thread_id, input=None)
    assert nodes[:2] == ["plan", "review"]
    assert events[-1]["atlas_event"] == "plan_approval_requested"  # this server asks a person


@pytest.fixture(scope="module")
def asking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """A server whose student calls ``interrupt()`` (``test_interrupts.asking_agent``)."""
    workdir = served_copy(tmp_path_factory.mktemp("serve-asking"))
    config = workdir / "asking.yaml"
    config.write_text(yaml.safe_dump({
        "agent": {"type": "python", "import_path": "test_interrupts", "attribute": "asking_agent",
                  "working_directory": str(ROOT / "tests")},
        "teacher": {"validator": "atlas_graph.demo:validator"},
    }), encoding="utf-8")  # fmt: skip
    running = DevServer(workdir, config)
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


async def test_served_interrupt_in_the_student_pauses_and_command_resume_continues(
    asking_server: DevServer,
) -> None:
    from langgraph_sdk import get_client

    client = get_client(url=asking_server.url)
    thread_id = (await client.threads.create())["thread_id"]
    await _stream(client, thread_id, input={"task": "Weather?", "mode": "paired"})
    assert (await client.threads.get(thread_id))["status"] == "interrupted"
    waiting = await client.threads.get_state(thread_id)
    assert waiting["next"] == ["execute"]
    assert waiting["tasks"][0]["interrupts"][0]["value"] == {"question": "Which city?"}

    _, nodes = await _stream(client, thread_id, command={"resume": {"city": "Lisbon"}})
    assert nodes[0] == "execute" and nodes[-1] == "finalize"
    done = (await client.threads.get_state(thread_id))["values"]
    assert done["final_answer"] == "Weather for Lisbon: sunny."
    assert done["steps"]["1"]["attempts"][0]["error"] is None
