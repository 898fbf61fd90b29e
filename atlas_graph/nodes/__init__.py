"""The graph's nodes, one module per family, with the helpers only that family uses.

``adaptive`` (triage, probe), ``student`` (plan, execute, synthesize), ``teacher`` (review,
validate, guide), ``scheduler`` (dispatch), ``reward``, ``arbiter``, ``learn``, ``finalize``.
Each module exposes ``make_<node>_node(services)`` factories; ``graph.py`` wires them and
``routes.py`` says where each one goes next.
"""
