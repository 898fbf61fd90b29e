"""atlas-graph: supervise any agent with a teacher, in a LangGraph state machine.

Heavy parts (model clients, the runner, the CLI) load on first use, so ``import atlas_graph``
stays fast. Async functions are named ``aname`` and their synchronous twins ``name``
(``arun``/``run``, ``alist_sessions``/``list_sessions``), as in LangChain and LangGraph.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from atlas_graph.agents import Agent, AgentRequest, AgentResponse, ToolResult, ToolRound
    from atlas_graph.config import AtlasConfig, load_config
    from atlas_graph.errors import (
        AgentError,
        ApprovalError,
        AtlasError,
        AtlasInputError,
        AtlasRunError,
        AtlasUserError,
        ConfigError,
        DatasetError,
        ExportError,
        ImportReferenceError,
        ModelConfigError,
        ModelOutputError,
        PlanParseError,
        ReviewError,
        ScriptExhaustedError,
        SessionNotFoundError,
        SessionStateError,
        StorageError,
        TaskFileError,
    )
    from atlas_graph.evaluation.batch import EvalReport, aevaluate, evaluate
    from atlas_graph.evaluation.matrix import MatrixPair, MatrixReport, arun_matrix, run_matrix
    from atlas_graph.evaluation.probe_eval import (
        ProbeEvalReport,
        aevaluate_probe,
        evaluate_probe,
    )
    from atlas_graph.evaluation.reward_eval import (
        RewardEvalReport,
        aevaluate_reward,
        evaluate_reward,
    )
    from atlas_graph.export import (
        ExportCounts,
        aexport_sessions,
        aiter_session_traces,
        export_sessions,
        iter_session_traces,
    )
    from atlas_graph.graph import create_atlas_graph
    from atlas_graph.lanes import LanePolicy
    from atlas_graph.nodes.approval import PlanDecision
    from atlas_graph.nodes.judges import JudgeReply, JudgeRequest, Principle
    from atlas_graph.nodes.teacher import (
        PlanReview,
        PlanReviewRequest,
        TeacherVerdict,
        ValidationRequest,
    )
    from atlas_graph.nodes.triage import TriageBuilder, TriageDossier, TriageRisk
    from atlas_graph.result import Result
    from atlas_graph.review import aset_review_status, set_review_status
    from atlas_graph.runner import aopen_graph, arun, run
    from atlas_graph.services import AtlasContext
    from atlas_graph.sessions import (
        aapprove_plan,
        afork_session,
        alist_sessions,
        approve_plan,
        aprune_sessions,
        aresume_session,
        asession_history,
        ashow_session,
        fork_session,
        list_sessions,
        prune_sessions,
        resume_session,
        session_history,
        show_session,
    )
    from atlas_graph.state import AtlasInput, AtlasOutput, AtlasState
    from atlas_graph.storage.persistence import (
        Persistence,
        aopen_persistence,
        open_persistence,
    )
    from atlas_graph.telemetry.console import ConsoleRenderer
    from atlas_graph.telemetry.events import AtlasEvent, ControlEvent
    from atlas_graph.telemetry.publishers import JsonlFilePublisher, TelemetryPublisher

__all__ = [
    "Agent",
    "AgentError",
    "AgentRequest",
    "AgentResponse",
    "ApprovalError",
    "AtlasConfig",
    "AtlasContext",
    "AtlasError",
    "AtlasEvent",
    "AtlasInput",
    "AtlasInputError",
    "AtlasOutput",
    "AtlasRunError",
    "AtlasState",
    "AtlasUserError",
    "ConfigError",
    "ConsoleRenderer",
    "ControlEvent",
    "DatasetError",
    "EvalReport",
    "ExportCounts",
    "ExportError",
    "ImportReferenceError",
    "JsonlFilePublisher",
    "JudgeReply",
    "JudgeRequest",
    "LanePolicy",
    "MatrixPair",
    "MatrixReport",
    "ModelConfigError",
    "ModelOutputError",
    "Persistence",
    "PlanDecision",
    "PlanParseError",
    "PlanReview",
    "PlanReviewRequest",
    "Principle",
    "ProbeEvalReport",
    "Result",
    "ReviewError",
    "RewardEvalReport",
    "ScriptExhaustedError",
    "SessionNotFoundError",
    "SessionStateError",
    "StorageError",
    "TaskFileError",
    "TeacherVerdict",
    "TelemetryPublisher",
    "ToolResult",
    "ToolRound",
    "TriageBuilder",
    "TriageDossier",
    "TriageRisk",
    "ValidationRequest",
    "aapprove_plan",
    "aevaluate",
    "aevaluate_probe",
    "aevaluate_reward",
    "aexport_sessions",
    "afork_session",
    "aiter_session_traces",
    "alist_sessions",
    "aopen_graph",
    "aopen_persistence",
    "approve_plan",
    "aprune_sessions",
    "aresume_session",
    "arun",
    "arun_matrix",
    "asession_history",
    "aset_review_status",
    "ashow_session",
    "create_atlas_graph",
    "evaluate",
    "evaluate_probe",
    "evaluate_reward",
    "export_sessions",
    "fork_session",
    "iter_session_traces",
    "list_sessions",
    "load_config",
    "open_persistence",
    "prune_sessions",
    "resume_session",
    "run",
    "run_matrix",
    "session_history",
    "set_review_status",
    "show_session",
]

_HOMES = {
    "AgentError": "atlas_graph.errors",
    "ApprovalError": "atlas_graph.errors",
    "AtlasError": "atlas_graph.errors",
    "AtlasInputError": "atlas_graph.errors",
    "AtlasRunError": "atlas_graph.errors",
    "AtlasUserError": "atlas_graph.errors",
    "ConfigError": "atlas_graph.errors",
    "ExportError": "atlas_graph.errors",
    "ImportReferenceError": "atlas_graph.errors",
    "ModelConfigError": "atlas_graph.errors",
    "ModelOutputError": "atlas_graph.errors",
    "PlanParseError": "atlas_graph.errors",
    "ReviewError": "atlas_graph.errors",
    "ScriptExhaustedError": "atlas_graph.errors",
    "SessionNotFoundError": "atlas_graph.errors",
    "SessionStateError": "atlas_graph.errors",
    "StorageError": "atlas_graph.errors",
    "TaskFileError": "atlas_graph.errors",
    "DatasetError": "atlas_graph.errors",
    "Agent": "atlas_graph.agents",
    "AgentRequest": "atlas_graph.agents",
    "AgentResponse": "atlas_graph.agents",
    "ToolResult": "atlas_graph.agents",
    "ToolRound": "atlas_graph.agents",
    "AtlasConfig": "atlas_graph.config",
    "load_config": "atlas_graph.config",
    "ConsoleRenderer": "atlas_graph.telemetry.console",
    "AtlasEvent": "atlas_graph.telemetry.events",
    "ControlEvent": "atlas_graph.telemetry.events",
    "EvalReport": "atlas_graph.evaluation.batch",
    "aevaluate": "atlas_graph.evaluation.batch",
    "evaluate": "atlas_graph.evaluation.batch",
    "MatrixPair": "atlas_graph.evaluation.matrix",
    "MatrixReport": "atlas_graph.evaluation.matrix",
    "arun_matrix": "atlas_graph.evaluation.matrix",
    "run_matrix": "atlas_graph.evaluation.matrix",
    "ProbeEvalReport": "atlas_graph.evaluation.probe_eval",
    "aevaluate_probe": "atlas_graph.evaluation.probe_eval",
    "evaluate_probe": "atlas_graph.evaluation.probe_eval",
    "RewardEvalReport": "atlas_graph.evaluation.reward_eval",
    "aevaluate_reward": "atlas_graph.evaluation.reward_eval",
    "evaluate_reward": "atlas_graph.evaluation.reward_eval",
    "create_atlas_graph": "atlas_graph.graph",
    "LanePolicy": "atlas_graph.lanes",
    "PlanDecision": "atlas_graph.nodes.approval",
    # The plug-in contracts: what validators, plan reviewers, judges and triage builders get.
    "JudgeReply": "atlas_graph.nodes.judges",
    "JudgeRequest": "atlas_graph.nodes.judges",
    "Principle": "atlas_graph.nodes.judges",
    "PlanReview": "atlas_graph.nodes.teacher",
    "PlanReviewRequest": "atlas_graph.nodes.teacher",
    "TeacherVerdict": "atlas_graph.nodes.teacher",
    "ValidationRequest": "atlas_graph.nodes.teacher",
    "TriageBuilder": "atlas_graph.nodes.triage",
    "TriageDossier": "atlas_graph.nodes.triage",
    "TriageRisk": "atlas_graph.nodes.triage",
    "JsonlFilePublisher": "atlas_graph.telemetry.publishers",
    "TelemetryPublisher": "atlas_graph.telemetry.publishers",
    "Result": "atlas_graph.result",
    "arun": "atlas_graph.runner",
    "run": "atlas_graph.runner",
    "aopen_graph": "atlas_graph.runner",
    "AtlasContext": "atlas_graph.services",
    "Persistence": "atlas_graph.storage.persistence",
    "aopen_persistence": "atlas_graph.storage.persistence",
    "open_persistence": "atlas_graph.storage.persistence",
    "aapprove_plan": "atlas_graph.sessions",
    "afork_session": "atlas_graph.sessions",
    "alist_sessions": "atlas_graph.sessions",
    "aprune_sessions": "atlas_graph.sessions",
    "aresume_session": "atlas_graph.sessions",
    "asession_history": "atlas_graph.sessions",
    "ashow_session": "atlas_graph.sessions",
    "approve_plan": "atlas_graph.sessions",
    "fork_session": "atlas_graph.sessions",
    "list_sessions": "atlas_graph.sessions",
    "prune_sessions": "atlas_graph.sessions",
    "resume_session": "atlas_graph.sessions",
    "session_history": "atlas_graph.sessions",
    "show_session": "atlas_graph.sessions",
    "AtlasInput": "atlas_graph.state",
    "AtlasOutput": "atlas_graph.state",
    "AtlasState": "atlas_graph.state",
    "ExportCounts": "atlas_graph.export",
    "aexport_sessions": "atlas_graph.export",
    "aiter_session_traces": "atlas_graph.export",
    "export_sessions": "atlas_graph.export",
    "iter_session_traces": "atlas_graph.export",
    "aset_review_status": "atlas_graph.review",
    "set_review_status": "atlas_graph.review",
    # Old names, kept for one release; each warns when called (see ``deprecation.py``).
    "approve_plan_sync": "atlas_graph.sessions",
    "fork_session_sync": "atlas_graph.sessions",
    "list_sessions_sync": "atlas_graph.sessions",
    "prune_sessions_sync": "atlas_graph.sessions",
    "resume_session_sync": "atlas_graph.sessions",
    "session_history_sync": "atlas_graph.sessions",
    "show_session_sync": "atlas_graph.sessions",
    "open_graph": "atlas_graph.runner",
    "open_persistence_sync": "atlas_graph.storage.persistence",
}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("atlas-graph")
        except PackageNotFoundError:  # a source tree that was never installed
            return "0+unknown"
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'atlas_graph' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)


def __dir__() -> list[str]:
    return sorted(__all__)
