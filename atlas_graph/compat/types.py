"""Atlas SDK's ``atlas.types`` names as views of the native ``Result``.

The mapping, field by field:

| Atlas | atlas-graph |
|---|---|
| ``Result.final_answer`` | ``Result.final_answer`` |
| ``Result.plan.steps[i]`` (``id, description, depends_on, tool…``) | ``Result.plan["steps"]`` |
| ``Result.plan.execution_mode`` | ``Result.plan["execution_mode"]`` |
| ``Result.step_results[i].step_id / output / attempts`` | ``Result.steps[i]`` |
| ``StepResult.trace`` | the last attempt's tool calls and output, as text |
| ``StepResult.evaluation.validation / .reward`` | ``StepResult.validation / .reward`` |
| ``StepResult.metadata`` | ``status``, ``guidance``, ``attempt_history``, ``prior_results`` |
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from atlas_graph.prompts import format_tool_calls
from atlas_graph.result import Result, StepResult


class AtlasStep(BaseModel):
    """Atlas's ``Step`` of a plan."""

    id: int
    description: str
    depends_on: list[int] = Field(default_factory=list)
    tool: str | None = None
    tool_params: dict[str, Any] | None = None


class AtlasPlan(BaseModel):
    """Atlas's ``Plan``: the steps and how they ran."""

    steps: list[AtlasStep] = Field(default_factory=list)
    execution_mode: str = ""


class AtlasStepEvaluation(BaseModel):
    """Atlas's ``StepEvaluation``: the teacher's verdict and the step's reward."""

    validation: dict[str, Any] = Field(default_factory=dict)
    reward: dict[str, Any] = Field(default_factory=dict)


class AtlasStepResult(BaseModel):
    """Atlas's ``StepResult``."""

    step_id: int
    trace: str = ""
    output: str = ""
    evaluation: AtlasStepEvaluation = Field(default_factory=AtlasStepEvaluation)
    attempts: int = 0
    metadata: dict[str, Any] = Field(default_factory=dict)


class AtlasResult(BaseModel):
    """Atlas's ``Result`` with the native one kept as ``native`` for everything else."""

    final_answer: str = ""
    plan: AtlasPlan = Field(default_factory=AtlasPlan)
    step_results: list[AtlasStepResult] = Field(default_factory=list)
    session_metadata: dict[str, Any] = Field(default_factory=dict)
    native: Result = Field(exclude=True)

    @classmethod
    def from_result(cls, result: Result) -> AtlasResult:
        """The Atlas view of a native ``Result``."""
        specs = (result.plan or {}).get("steps", [])
        steps = [
            AtlasStep(
                id=spec["id"],
                description=spec["description"],
                depends_on=list(spec.get("depends_on", [])),
                tool=spec.get("tool"),
                tool_params=spec.get("tool_params"),
            )
            for spec in specs
        ]
        return cls(
            final_answer=result.final_answer,
            plan=AtlasPlan(
                steps=steps, execution_mode=str((result.plan or {}).get("execution_mode", ""))
            ),
            step_results=[_step_result(step) for step in result.steps],
            session_metadata={
                **result.session_metadata,
                "session_id": result.session_id,
                "status": result.status,
                "execution_mode": result.lane,
            },
            native=result,
        )


def _step_result(step: StepResult) -> AtlasStepResult:
    last = step.attempt_history[-1] if step.attempt_history else None
    trace_lines = [format_tool_calls(last.tool_calls)] if last and last.tool_calls else []
    if step.output:
        trace_lines.append(step.output)
    if last is not None and last.error:
        trace_lines.append(last.error)
    return AtlasStepResult(
        step_id=step.step_id,
        trace="\n".join(trace_lines),
        output=step.output,
        evaluation=AtlasStepEvaluation(
            validation=dict(step.validation or {}), reward=dict(step.reward or {})
        ),
        attempts=step.attempts,
        metadata={
            "status": step.status,
            "description": step.description,
            "guidance": list(step.guidance),
            "attempt_history": [entry.model_dump() for entry in step.attempt_history],
            "prior_results": dict(step.prior_results),
        },
    )
