"""Slow and huge answers: a drip cannot hold a call for ever, a huge body is not read whole."""

from __future__ import annotations

import json
import resource
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from atlas_graph.agents.base import AgentError, AgentRequest
from atlas_graph.agents.http import HttpAgent
from atlas_graph.errors import AtlasRunError
from atlas_graph.runner import arun
from chaos.fault_servers import FaultServer, Raw, ordinary, schema_of

ANSWER = json.dumps({"content": "done"}).encode()


def request() -> AgentRequest:
    return AgentRequest(
        mode="execute", task="task", prompt="Step 1: do it", step={"id": 1, "description": "do"}
    )


def drip(body: dict[str, Any]) -> Raw:
    """Headers at once, then the body a byte at a time, a tenth of a second apart, for ever."""
    return Raw(200, ANSWER + b" " * 100_000, chunk=1, pause=0.1)


def huge() -> Iterator[bytes]:
    block = b" " * (1 << 20)
    yield b'{"content": "'
    for _ in range(100):  # 100 MB, sent as fast as the client takes it
        yield block
    yield b'"}'


@pytest.mark.parametrize("trial", range(3))
async def test_a_dripping_agent_times_out_as_a_whole_call(trial: int) -> None:
    with FaultServer(drip) as server:
        agent = HttpAgent(server.url, timeout_seconds=0.5, attempts=2, backoff_seconds=0)
        async with agent:
            with pytest.raises(AgentError, match=r"timed out after 0\.5s; gave up after 2"):
                await agent.ainvoke(request())
        assert len(server.requests) == 2


@pytest.mark.parametrize(
    "answer",
    [
        Raw(200, huge),  # chunked: no length announced
        Raw(200, huge, length=100 * (1 << 20) + 15),  # announced
    ],
    ids=["chunked", "announced"],
)
async def test_a_huge_agent_body_is_refused_without_reading_it_whole(answer: Raw) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with FaultServer(lambda body: answer) as server:
        async with HttpAgent(server.url, timeout_seconds=20, attempts=3) as agent:
            with pytest.raises(AgentError, match="body over 8388608 bytes") as caught:
                await agent.ainvoke(request())
        assert len(server.requests) == 1  # not retried
    assert "\n" not in str(caught.value)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 64  # the 100 MB body was never held


async def test_a_small_answer_still_reads() -> None:
    with FaultServer(lambda body: Raw(200, ANSWER)) as server:
        async with HttpAgent(server.url, timeout_seconds=5) as agent:
            assert (await agent.ainvoke(request())).content == "done"


async def test_a_dripping_teacher_stops_the_session_within_its_deadline(tmp_path: Path) -> None:
    def handler(body: dict[str, Any]) -> Any:
        if schema_of(body):
            return Raw(200, b" " * 10_000, chunk=1, pause=0.1)
        return ordinary(body)

    with FaultServer(handler) as server:
        llm = {"provider": "openai", "api_base": server.base_url, "api_key_env": None,
               "timeout_seconds": 0.5, "max_retries": 0}  # fmt: skip
        config = {
            "storage": {"backend": "memory"},
            "agent": {"type": "openai", "name": "wire", "llm": {**llm, "model": "student"}},
            "teacher": {"llm": {**llm, "model": "teacher"}},
        }
        with pytest.raises(AtlasRunError, match="stopped in validate"):
            await arun("question", config=config, mode="paired")


async def test_a_dripping_student_model_times_out_as_a_whole_call() -> None:
    from atlas_graph.agents import agent_from_config
    from atlas_graph.config import load_config

    with FaultServer(lambda body: Raw(200, b" " * 10_000, chunk=1, pause=0.1)) as server:
        llm = {"provider": "openai", "api_base": server.base_url, "api_key_env": None,
               "timeout_seconds": 0.5, "max_retries": 1, "model": "student"}  # fmt: skip
        config = load_config({"agent": {"type": "openai", "name": "wire", "llm": llm}})
        assert config.agent is not None
        agent = agent_from_config(config.agent, config.student)
        with pytest.raises(TimeoutError):
            await agent.ainvoke(request())  # 2 × 0.5 s at most, not 1,000 s of drip
