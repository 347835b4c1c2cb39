"""Files shared by the importers and exporters: JSON read with located errors, images
linked or copied."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from src.errors import DatasetError


def read_json(path: Path):
    """Parse a JSON file; a bad file is a DatasetError naming it and the line/column."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"line {exc.lineno} column {exc.colno}: invalid JSON ({exc.msg})",
                           path=path) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read ({exc})", path=path) from exc


def place_file(source: Path, target: Path) -> None:
    """Hard-link `source` to `target`, or copy it where links are not possible."""
    if not source.is_file():
        raise DatasetError("image file is missing", path=source,
                           hint="re-capture the frame or delete it from the project")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except FileExistsError:
        raise DatasetError("two images would be exported under the same name", path=target,
                           hint="a bug in the exporter's naming; please report it") from None
    except OSError:
        shutil.copy2(source, target)
