"""LabelLoop: `python main.py` opens the GUI; `python main.py COMMAND` runs headless (--help)."""
from __future__ import annotations

import sys

from src.cli import main

if __name__ == "__main__":
    sys.exit(main())
