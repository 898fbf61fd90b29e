"""What a thread's latest checkpoint says about it: finished, waiting, or interrupted.

A LangGraph ``StateSnapshot`` lists in ``next`` only the tasks that still have to run. When a
superstep's tasks all saved their writes but the checkpoint after them was never written (the
database failed in between, the disk filled up, the process was killed), ``next`` is empty
while ``tasks`` still holds those tasks with their saved results: the thread is not finished,
and running it again (``astream(None, config)``) applies the writes and goes on. Every reader
here (``arun``, ``show``, ``sessions``, ``prune``) asks these functions instead of reading
``next`` alone.
"""

from __future__ import annotations

from typing import Any, Literal

ThreadStatus = Literal["new", "finished", "waiting", "pending", "interrupted"]


def unfinished(snapshot: Any) -> bool:
    """Whether the thread has a checkpoint that still has work: tasks to run or to apply."""
    return bool(snapshot.values) and bool(snapshot.next or snapshot.tasks)


def finished(snapshot: Any) -> bool:
    """Whether the thread ran to its end: values and nothing left to run or apply."""
    return bool(snapshot.values) and not snapshot.next and not snapshot.tasks


def thread_status(snapshot: Any) -> ThreadStatus:
    """``new`` (no state), ``finished``, ``waiting`` (an interrupt asks for a decision),
    ``pending`` (nodes left to run) or ``interrupted`` (the last tasks saved their results,
    but the checkpoint after them is missing; resuming applies them and goes on)."""
    if not snapshot.values:
        return "new"
    if snapshot.interrupts:
        return "waiting"
    if snapshot.next:
        return "pending"
    if snapshot.tasks:
        return "interrupted"
    return "finished"


def task_names(snapshot: Any) -> list[str]:
    """Names of the latest checkpoint's tasks, run or not (where an interrupted run stopped)."""
    return [task.name for task in snapshot.tasks]
