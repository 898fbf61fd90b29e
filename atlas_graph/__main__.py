"""``python -m atlas_graph``: the ``atlas-graph`` command line."""

import sys

from atlas_graph.cli import main

if __name__ == "__main__":
    sys.exit(main())
