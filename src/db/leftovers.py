"""What a killed process leaves in a project folder, and the sweep that removes it at open.

Every multi-step write stages its files under a name that carries the writing process's
id (`.<kind>-<pid>-...`, made by `staging_dir`), and renames its result into place inside
the write transaction that inserts the rows. So after a SIGKILL:
- a staging entry whose process is gone is garbage (a live one is never touched);
- a `frames/<id>` or `datasets/<name>/v<N>` folder without its row is garbage, once the
  sweep holds the write lock: a live writer renames such folders only while it holds it;
- a capture staging folder names the frame file it was placing: kept if the frame's row
  was committed, removed with the file otherwise;
- an export records its temporary folder (outside the project) in a marker file in the
  project folder, so that folder is removed too.
Only names matching these patterns are ever removed.
"""
from __future__ import annotations

import os
import re
import shutil
import sqlite3
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from src.db.connection import transaction
from src.errors import DatasetError
from src.processes import pid_alive

KINDS = ("import", "capture", "build", "stale", "export")
_STAGING = re.compile(r"^\.(?P<kind>import|capture|build|stale|export)-(?P<pid>\d+)-(?P<rest>.*)$")
# Names of earlier LabelLoop versions: a build's temp folder and a replaced frames/<id>
# carried the pid; an import's staging folder did not, so it counts as dead once it is old.
_OLD_BUILD_TMP = re.compile(r"^\.tmp-v\d+-(?P<pid>\d+)-[0-9a-f]+$")
_OLD_STALE = re.compile(r"^\.stale-\d+-(?P<pid>\d+)$")
_OLD_IMPORT = re.compile(r"^\.import-[a-z0-9_]{8}$")
_OLD_IMPORT_AGE_S = 24 * 3600
_CAPTURE_REST = re.compile(r"^(?P<source>\d+)-(?P<index>\d{6})(?P<suffix>\.[A-Za-z0-9]{1,8})-")
_VERSION_DIR = re.compile(r"^v(\d+)$")
_SOURCE_DIR = re.compile(r"^\d+$")
# A sweep waits this long for the write lock, then leaves the work to a later open.
_SWEEP_WAIT_MS = 2000


def staging_dir(parent: Path, kind: str, tag: str = "") -> Path:
    """A new staging folder in `parent` named after this process (swept once it is gone)."""
    assert kind in KINDS, kind
    parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{kind}-{os.getpid()}-" + (f"{tag}-" if tag else "")
    return Path(tempfile.mkdtemp(prefix=prefix, dir=parent))


def capture_tag(source_id: int, index: int, suffix: str) -> str:
    """The tag of a capture staging folder: which frame file it is placing."""
    return f"{source_id}-{index:06d}{suffix}"


def staging_owner(name: str) -> int | None:
    """The process id in a staging name, or None when `name` is not one of ours."""
    match = _OLD_STALE.match(name) or _STAGING.match(name) or _OLD_BUILD_TMP.match(name)
    return int(match.group("pid")) if match else None


def remove_dead_staging(folder: Path) -> None:
    """Remove the staging entries in `folder` whose process is gone (plain staging only:
    capture and export entries need the sweep, which knows the rows)."""
    for path in _entries(folder):
        pid = staging_owner(path.name)
        kind = _kind(path.name)
        if pid is not None and kind not in ("capture", "export") and not pid_alive(pid):
            _remove(path)


def sweep(root: Path, conn: sqlite3.Connection) -> list[Path]:
    """Remove what killed processes left in project `root`; returns what was removed.

    A cheap scan finds candidates first; only when there are some is the write lock taken
    and each candidate checked again under it."""
    if not _candidates(root, conn):
        return []
    timeout = conn.execute("PRAGMA busy_timeout").fetchone()[0]
    conn.execute(f"PRAGMA busy_timeout = {_SWEEP_WAIT_MS}")
    try:
        with transaction(conn):
            found = _candidates(root, conn)
            for path in found:
                _remove_leftover(path, root, conn)
    except sqlite3.OperationalError:  # busy or read-only: the next open sweeps instead
        return []
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(timeout)}")
    return found


@contextmanager
def export_folder(project_root: Path, out: Path) -> Iterator[Path]:
    """Yield a temp folder beside `out`, renamed to `out` (absent or empty) when the block
    succeeds and removed when it fails. A marker in the project names the temp folder
    first, so the sweep removes it if the export is killed."""
    _remove_dead_exports(out.parent)
    pid = os.getpid()
    tmp = out.parent / f".export-{pid}-{uuid.uuid4().hex[:12]}"
    marker = project_root / tmp.name
    marker.write_text(str(tmp), encoding="utf-8")
    try:
        tmp.mkdir()
        yield tmp
        _rename_over_empty(tmp, out)
    finally:
        _remove(tmp)
        marker.unlink(missing_ok=True)


def _rename_over_empty(tmp: Path, out: Path) -> None:
    """POSIX rename replaces an empty folder in one step: `out` is never missing half-way."""
    try:
        os.replace(tmp, out)
    except OSError as exc:
        if not (out.is_dir() and not any(out.iterdir())):
            raise DatasetError("the output folder was filled by something else during the"
                               " export; it was left as it is", path=out,
                               hint="choose a new folder") from exc
        out.rmdir()  # where a folder cannot replace another (Windows)
        os.replace(tmp, out)


def _remove_dead_exports(folder: Path) -> None:
    for path in _entries(folder):
        if _kind(path.name) == "export" and path.is_dir() and _dead_staging(path):
            _remove(path)


def _candidates(root: Path, conn: sqlite3.Connection) -> list[Path]:
    """Cheap on a big project (it runs at every open): one listing per folder, names first
    (no Path per entry), a stat only for a name that is not registered."""
    found = [root / n for n in _names(root) if _dead(root, n)]
    imports = root / "imports"
    names = _names(imports)
    found += [imports / n for n in names if _dead(imports, n)]
    if names:
        found += _unregistered_link_folders(imports, names, conn)
    sources = {str(r[0]) for r in conn.execute("SELECT id FROM media_sources")}
    frames = root / "frames"
    for name in _names(frames):
        if _dead(frames, name) or (
                name not in sources and _SOURCE_DIR.match(name) and (frames / name).is_dir()):
            found.append(frames / name)
    datasets = root / "datasets"
    names = [n for n in _names(datasets) if not n.startswith(".")]
    versions = set(conn.execute("SELECT name, 'v' || version FROM datasets")) if names else ()
    for folder in (datasets / n for n in names):
        for name in _names(folder):
            if _dead(folder, name) or (
                    (folder.name, name) not in versions and _VERSION_DIR.match(name)
                    and (folder / name).is_dir()):
                found.append(folder / name)
    return found


def _unregistered_link_folders(imports: Path, names: list[str],
                               conn: sqlite3.Connection) -> list[Path]:
    """imports/<folder>-<key> folders no source row names: an import renames one into place
    inside the transaction that inserts its row, so without the row it is garbage."""
    # By name, not by full path: source paths are stored absolute, and a moved project's
    # rows still name its imports/ folders by their old location.
    registered = {os.path.basename(path) for (path,) in conn.execute(
        "SELECT path FROM media_sources WHERE kind = 'images'")
        if os.path.basename(os.path.dirname(path)) == "imports"}
    return [imports / n for n in names if not n.startswith(".") and n not in registered
            and (imports / n).is_dir()]


def _remove_leftover(path: Path, root: Path, conn: sqlite3.Connection) -> None:
    kind = _kind(path.name)
    if kind == "capture":
        _undo_capture(path, root, conn)
    elif kind == "export" and path.parent == root:
        _undo_export(path)
    _remove(path)
    folder = path.parent
    if folder.parent == root / "datasets" and not any(_entries(folder)):
        known = conn.execute("SELECT 1 FROM datasets WHERE name = ?", (folder.name,)).fetchone()
        if known is None:
            folder.rmdir()


def _undo_capture(staging: Path, root: Path, conn: sqlite3.Connection) -> None:
    """Remove the frame file a killed capture placed if its row was never committed."""
    match = _CAPTURE_REST.match(_STAGING.match(staging.name).group("rest"))
    if not match:
        return
    source, index = int(match.group("source")), int(match.group("index"))
    row = conn.execute("SELECT 1 FROM frames WHERE source_id = ? AND frame_index = ?",
                       (source, index)).fetchone()
    if row is None:
        target = root / "frames" / str(source) / f"{index:06d}{match.group('suffix')}"
        target.unlink(missing_ok=True)


def _undo_export(marker: Path) -> None:
    """An export marker holds the path of its temporary folder beside the export target."""
    try:
        tmp = Path(marker.read_text(encoding="utf-8").strip())
    except (OSError, UnicodeDecodeError):
        return
    if tmp.is_absolute() and staging_owner(tmp.name) == staging_owner(marker.name) \
            and _kind(tmp.name) == "export":
        _remove(tmp)


def _dead(folder: Path, name: str) -> bool:
    """Whether `name` in `folder` is staging whose process is gone (cheap for other names)."""
    return name.startswith(".") and _dead_staging(folder / name)


def _dead_staging(path: Path) -> bool:
    pid = staging_owner(path.name)
    if pid is None and _OLD_IMPORT.match(path.name):
        try:
            return time.time() - path.stat().st_mtime > _OLD_IMPORT_AGE_S
        except OSError:
            return False
    return pid is not None and not pid_alive(pid)


def _kind(name: str) -> str | None:
    match = _STAGING.match(name)
    return match.group("kind") if match else ("build" if _OLD_BUILD_TMP.match(name) else None)


def _names(folder: Path) -> list[str]:
    try:
        return os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _entries(folder: Path) -> list[Path]:
    return [folder / name for name in _names(folder)]


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
