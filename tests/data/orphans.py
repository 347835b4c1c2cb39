"""What a crash or a failure may leave in a project: the check the kill and disk-full
tests share."""
from __future__ import annotations

from pathlib import Path

from src.db import datasets as datasets_repo
from src.db import frames as frames_repo
from src.db import sources as sources_repo
from src.db.project import Project


def leftovers(root: Path, *elsewhere: Path) -> list[str]:
    """Everything in the project (and `elsewhere`) that is not backed by a row, or a row
    whose files are missing, after opening the project (which sweeps)."""
    with Project.open(root, create=False) as project:
        conn = project.conn
        frames = {f.image_path for f in frames_repo.list_frames(conn)}
        sources_list = sources_repo.list_sources(conn)
        sources = {str(s.id) for s in sources_list}
        datasets = {d.path for d in datasets_repo.list_datasets(conn)}
    found = [f"hidden entry {p}" for p in root.iterdir() if p.name.startswith(".")]
    paths = {s.path for s in sources_list}
    found += [f"import folder without a source: {p}" for p in root.glob("imports/*")
              if str(p) not in paths]
    for folder in (root / "frames").glob("*"):
        if folder.name not in sources:
            found.append(f"not a source's folder: {folder}")
        found += [f"file without a frame row: {f}" for f in folder.glob("*")
                  if f.relative_to(root).as_posix() not in frames]
    found += [f"frame row without its file: {f}" for f in frames if not (root / f).is_file()]
    for folder in (root / "datasets").glob("*/*"):
        if folder.relative_to(root).as_posix() not in datasets:
            found.append(f"not a recorded dataset version: {folder}")
    found += [f"dataset row without its folder: {d}" for d in datasets
              if not (root / d / "data.yaml").is_file()]
    for folder in elsewhere:
        found += [f"temp entry {p}" for p in folder.iterdir() if p.name.startswith(".")]
    return found
