"""The ``atlas-graph`` command line: one module per command group, ``common`` for the rest."""

from atlas_graph.cli.common import EXIT_FAILED, EXIT_OK, EXIT_STOPPED, EXIT_USAGE
from atlas_graph.cli.main import main

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_STOPPED", "EXIT_USAGE", "main"]
