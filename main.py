"""LabelLoop: `python main.py` opens the GUI; `python main.py COMMAND` runs headless (--help)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

# Ultralytics reads these once, at import: never pip-install at run time, and keep its
# settings with LabelLoop's. YOLO_OFFLINE=1 (set it yourself) skips even the online check.
os.environ.setdefault("YOLO_AUTOINSTALL", "false")
os.environ.setdefault("YOLO_CONFIG_DIR", str(Path.home() / ".config" / "labelloop" / "ultralytics"))

from src.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
