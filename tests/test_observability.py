"""Observability: OpenTelemetry export through LangSmith's OTel mode to a loopback OTLP sink,
and the LangSmith evaluator for the session reward."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from atlas_graph.demo import demo_config_path
from atlas_graph.evaluation.evaluators import session_reward
from atlas_graph.runner import run

ROOT = Path(__file__).resolve().parent.parent


class OtlpSink:
    """A loopback OTLP/HTTP endpoint that keeps every request body."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, bytes]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("content-length", 0))
                sink.requests.append((self.path, self.rfile.read(size)))
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def otlp_sink() -> Iterator[OtlpSink]:
    sink = OtlpSink()
    yield sink
    sink.server.shutdown()


def test_sessions_export_spans_over_otlp_in_langsmith_otel_mode(otlp_sink: OtlpSink) -> None:
    if importlib.util.find_spec("opentelemetry.exporter.otlp.proto.http") is None:
        pytest.skip("the otel extra is not installed (pip install 'atlas-graph[otel]')")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGSMITH", "LANGCHAIN"))}
    env.update(
        LANGSMITH_TRACING="true",
        LANGSMITH_TRACING_MODE="otel",
        LANGSMITH_API_KEY="loopback-key",
        LANGSMITH_ENDPOINT=otlp_sink.url,  # nothing leaves the machine
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"{otlp_sink.url}/v1/traces",
        PYTHONPATH=str(ROOT),
    )
    code = (
        "import yaml\n"
        "from atlas_graph import run\n"
        "from atlas_graph.demo import demo_config_path\n"
        "config = yaml.safe_load(demo_config_path().read_text())\n"
        "config['storage'] = {'backend': 'memory'}\n"
        "result = run('Multiply 17 by 23.', config=config, mode='paired', stream_progress=False)\n"
        "print(result.final_answer)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=180, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "391"
    traces = [body for path, body in otlp_sink.requests if path == "/v1/traces"]
    assert traces, otlp_sink.requests
    spans = b"".join(traces)
    for name in (b"atlas-graph", b"triage", b"execute", b"validate"):
        assert name in spans, name  # the session's root run and its nodes became spans


def test_session_reward_evaluator_scores_a_result_through_langsmith_run_evaluator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from langsmith.evaluation.evaluator import run_evaluator
    from langsmith.schemas import Example, Run

    monkeypatch.chdir(tmp_path)
    result = run("Multiply 17 by 23.", config=demo_config_path(), mode="coach",
                 stream_progress=False)  # fmt: skip
    assert result.reward is not None
    outputs = result.model_dump(mode="json")
    now = datetime.now(UTC)
    traced = Run(id=uuid.uuid4(), name="atlas-graph", start_time=now, run_type="chain",
                 inputs={"task": result.task}, outputs=outputs, trace_id=uuid.uuid4())  # fmt: skip
    example = Example(id=uuid.uuid4(), dataset_id=uuid.uuid4(), inputs={"task": result.task},
                      outputs={}, created_at=now)  # fmt: skip
    feedback: Any = run_evaluator(session_reward).evaluate_run(traced, example)
    assert feedback.key == "session_reward"
    assert feedback.score == pytest.approx(result.reward["score"])

    unrewarded = session_reward({"status": "failed", "reward": None})
    assert unrewarded == {"key": "session_reward", "score": None,
                          "comment": "no session reward (status failed)"}  # fmt: skip
