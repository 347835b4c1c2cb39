"""File writing shared by the exporters: atomic text files, images linked or copied."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from src.errors import DatasetError


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
