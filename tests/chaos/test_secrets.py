"""Planted secrets reach none of: checkpoints, ledger, console, events JSONL, JSON output,
LangSmith payloads.

Secrets are planted in session metadata (by key and by shape) and in a provider's 401 body,
which quotes the key the model was sent. Every place a session writes outside the process is
then searched for them byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import langsmith.run_trees
import langsmith.utils
import pytest
import yaml
from langchain_core.tracers.langchain import wait_for_all_tracers
from langsmith_sink import LangSmithSink

from atlas_graph.cli.main import main
from atlas_graph.redaction import scrub
from chaos.fault_servers import FaultServer, Raw, ordinary, schema_of

PROVIDER_KEY = "sk-proj-PLANTEDprovider0001keyvalue"
METADATA = {
    "api_key": "plain-PLANTED-0002",
    "token": "plain-PLANTED-0003",
    "db_password": "plain-PLANTED-0004",
    "note": "use sk-PLANTEDshape0005abcdefgh for the run",
    "dsn": "postgresql://atlas:PLANTED-0006@db.internal/atlas",
    "harmless": "keep-me-0007",
}
SECRETS = (
    PROVIDER_KEY, "plain-PLANTED-0002", "plain-PLANTED-0003", "plain-PLANTED-0004",
    "sk-PLANTEDshape0005abcdefgh", "PLANTED-0006",
)  # fmt: skip


def leaks(text: str | bytes) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [secret for secret in SECRETS if secret.encode() in data]


def _reset_langsmith() -> None:
    wait_for_all_tracers()
    langsmith.run_trees._CLIENT = None
    langsmith.utils.get_env_var.cache_clear()


@pytest.fixture
def sink(monkeypatch: pytest.MonkeyPatch) -> Iterator[LangSmithSink]:
    server = LangSmithSink().start()
    unset = ("LANGCHAIN_TRACING_V2", "LANGCHAIN_API_KEY", "LANGCHAIN_ENDPOINT", "HTTP_PROXY",
             "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy")  # fmt: skip
    for name in unset:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("LANGSMITH_TRACING", "true")
    monkeypatch.setenv("LANGSMITH_ENDPOINT", server.url)
    monkeypatch.setenv("LANGSMITH_API_KEY", "lsv2_pt_fakefakefakefakefake")
    monkeypatch.setenv("LANGSMITH_PROJECT", "atlas-graph-chaos")
    monkeypatch.setenv("ATLAS_CHAOS_MODEL_KEY", PROVIDER_KEY)
    _reset_langsmith()
    yield server
    _reset_langsmith()
    server.stop()


def unauthorized(body: dict[str, Any]) -> Raw:
    """A provider's 401 that quotes the key back, as OpenAI's does."""
    message = f"Incorrect API key provided: {PROVIDER_KEY}. Find your key at example.test."
    error = {"message": message, "type": "invalid_request_error", "code": "invalid_api_key"}
    return Raw(401, json.dumps({"error": error}).encode())


def write_config(path: Path, server: FaultServer) -> Path:
    llm = {"provider": "openai", "api_base": server.base_url, "timeout_seconds": 10,
           "api_key_env": "ATLAS_CHAOS_MODEL_KEY", "max_retries": 0}  # fmt: skip
    config = {
        "storage": {"backend": "sqlite", "path": str(path / "atlas.sqlite")},
        "agent": {"type": "openai", "name": "wire", "llm": {**llm, "model": "student"}},
        "teacher": {"llm": {**llm, "model": "teacher"}},
    }
    target = path / "atlas.yaml"
    target.write_text(yaml.safe_dump(config))
    return target


def test_planted_secrets_leak_nowhere(
    sink: LangSmithSink, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    answers = {"fault": False}

    def handler(body: dict[str, Any]) -> Any:
        if answers["fault"] and schema_of(body):
            return unauthorized(body)
        return ordinary(body)

    events = tmp_path / "events.jsonl"
    with FaultServer(handler) as server:
        config = str(write_config(tmp_path, server))
        common = ["-c", config, "--mode", "paired", "--events-jsonl", str(events), "--stream"]
        meta = json.dumps(METADATA)
        ran = main(["run", "question", "--thread-id", "meta", "--metadata", meta, *common])
        ran_json = main(["run", "question", "--thread-id", "meta-json", "--metadata", meta,
                         "--json", *common])  # fmt: skip
        answers["fault"] = True
        stopped = main(["run", "question", "--thread-id", "key-401", "--metadata", meta, *common])
        for thread in ("meta", "key-401"):
            main(["show", thread, "-c", config])
            main(["show", thread, "-c", config, "--json"])
    out, err = capsys.readouterr()
    wait_for_all_tracers()

    assert (ran, ran_json, stopped) == (0, 0, 3)
    assert "Incorrect API key provided: [redacted]" in err  # the error still says what failed
    assert "keep-me-0007" in out  # harmless metadata is shown
    places: dict[str, bytes] = {
        "console and JSON output": (out + err).encode(),
        "events JSONL": events.read_bytes(),
        "checkpoints and ledger": b"".join(
            file.read_bytes() for file in tmp_path.rglob("atlas.sqlite*") if file.is_file()
        ),
        "LangSmith": b"".join(request.body for request in sink.received),
    }
    assert len(sink.received) > 0 and events.stat().st_size > 0
    found = {place: leaks(data) for place, data in places.items()}
    assert found == {place: [] for place in places}


def test_scrub_hides_keys_shapes_and_dsn_passwords() -> None:
    scrubbed = scrub(METADATA)
    assert leaks(json.dumps(scrubbed)) == []
    assert scrubbed["harmless"] == "keep-me-0007"
