"""Persona prompts: the agent's system prompt as planner, executor and teacher.

With a ``prompt_rewrite`` block an LLM rewrites ``agent.system_prompt`` once into the three
personas; the result is cached in the Store under ``("atlas", "prompt_personas")`` by a hash
of the prompt and the rewrite settings, so later runs (in any process sharing the store) reuse
it without a call. Without the block, or when the rewrite fails, the built-in templates wrap
the system prompt as before. The session records which source each persona came from.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.errors import GraphBubbleUp
from langgraph.runtime import Runtime
from langgraph.store.base import BaseStore
from pydantic import BaseModel, ConfigDict

from atlas_graph import prompts
from atlas_graph.config import PromptRewriteConfig
from atlas_graph.services import AtlasContext, Services
from atlas_graph.usage import Usage

PERSONAS = ("planner", "executor", "teacher")
NAMESPACE = ("atlas", "prompt_personas")


class PersonaPrompts(BaseModel):
    """The rewrite model's reply: one system prompt per persona."""

    model_config = ConfigDict(extra="ignore")

    planner: str
    executor: str
    teacher: str


# connection details that do not change what the model writes (and may carry credentials)
_NOT_IN_KEY = {"api_key_env", "additional_headers", "organization", "timeout_seconds",
               "max_retries", "retry"}  # fmt: skip


def rewrite_key(system_prompt: str, settings: PromptRewriteConfig) -> str:
    """Cache key: the prompt and every setting that changes the rewrite."""
    shown = settings.model_dump(mode="json", exclude={"llm": _NOT_IN_KEY})
    material = json.dumps({"prompt": system_prompt, "settings": shown}, sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()


def _used(source: str, key: str | None = None) -> list[dict[str, Any]]:
    return [
        {"persona": persona, "source": source, **({"cache_key": key} if key else {})}
        for persona in PERSONAS
    ]


async def persona_prompts(
    services: Services, runtime: Runtime[AtlasContext] | None, store: BaseStore | None
) -> tuple[dict[str, str] | None, list[dict[str, Any]], Usage | None, str | None]:
    """``(prompts by persona or None, personas_used, usage, note)`` for this session."""
    settings = services.config.prompt_rewrite
    agent = services.config.agent
    base = agent.system_prompt if agent else ""
    if settings is None or not base.strip():
        return None, _used("template"), None, None
    key = rewrite_key(base, settings)
    if store is not None:
        cached = await store.aget(NAMESPACE, key)
        if cached is not None:
            return dict(cached.value["personas"]), _used("cache", key), None, None
    messages = [SystemMessage(prompts.PERSONA_REWRITE), HumanMessage(base)]
    try:
        runnable = services.structured(
            "prompt_rewrite", PersonaPrompts, runtime, max_tokens=settings.max_tokens
        )
        answer = await runnable.ainvoke(messages)
        reply, usage = answer.value, answer.usage
    except GraphBubbleUp:  # an interrupt() pauses the session
        raise
    except Exception as error:  # the templates still work; the session should not fail
        note = f"prompt rewrite failed, templates used: {type(error).__name__}: {error}"
        return None, _used("template"), None, note
    personas = reply.model_dump()
    if store is not None:
        await store.aput(NAMESPACE, key, {"personas": personas, "model": settings.llm.model})
    return personas, _used("rewrite", key), usage, None
