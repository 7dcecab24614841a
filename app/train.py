"""`python -m app.train`, the command users know: the CLI lives in app.training.cli."""

import sys

from app.training.cli import main

if __name__ == "__main__":
    sys.exit(main())
