"""Learning playbooks: synthesizer, gates, rubric, registry, usage tracking and pruning.

After a rewarded session the synthesizer proposes ``playbook_entry.v1`` entries; gates and the
rubric decide which are kept; the registry keeps them per learning key in the LangGraph Store;
the pamphlet of kept entries enters the next sessions' prompts; usage tracking and pruning keep
only the entries that pay off.
"""
