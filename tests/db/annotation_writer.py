"""Child process for the kill test: writes annotations forever, reporting each commit."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from src.db import annotations as annotations_repo  # noqa: E402
from src.db.project import Project  # noqa: E402
from src.db.records import Annotation  # noqa: E402


def main(project_dir: str, frame_id: int, class_id: int) -> None:
    project = Project.open(project_dir, create=False)
    i = 0
    while True:
        ann = annotations_repo.add_annotation(project.conn, Annotation(
            frame_id, class_id, "box", [i % 50, i % 40, i % 50 + 5, i % 40 + 5]))
        # Reported only after the commit returned: the parent may rely on it.
        print(f"committed {ann.id}", flush=True)
        i += 1


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
