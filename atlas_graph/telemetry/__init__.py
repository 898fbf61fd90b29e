"""What a session tells the world while it runs: typed events and where they go.

``events`` defines them, ``instrument`` records them from every node, ``trajectory`` keeps
the session's record of them, ``fanout`` sends them to the ``console``, callbacks and
``publishers``.
"""
