"""``python -m asgisec``: the same as the ``asgisec`` command."""

from __future__ import annotations

import sys

from .cli import main

# The guard matters: uvicorn's worker processes are spawned and re-import this module.
if __name__ == "__main__":
    sys.exit(main())
