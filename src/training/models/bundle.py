"""Moving a model between machines: a bundle (zip of the version's files, a manifest with
classes, metrics, dataset, lineage and the sha256 of every file), and its import.

An imported version is registered untrusted: its pickles are never loaded until the user
confirms it (`models import --trust` or `models trust ID`). The zip is read defensively:
only the manifest's own member names, no absolute or '..' paths, bounded sizes, every file
checked against its sha256 before anything is registered.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from src.atomic_files import atomic_path
from src.db import model_versions as repo
from src.db.records import MODEL_TASKS, ModelVersion
from src.errors import ModelError
from src.training import trust
from src.training.models.manager import KNOWN_TASKS, ModelManager, file_role, scan_files

BUNDLE_FORMAT = "labelloop-model-bundle"
BUNDLE_VERSION = 1
MAX_MANIFEST_BYTES = 1 << 20
MAX_BUNDLE_BYTES = int(os.environ.get("LABELLOOP_MAX_BUNDLE_BYTES", 8 << 30))


def export_bundle(manager: ModelManager, version: ModelVersion, out: Path) -> Path:
    """Write `out` (.zip): files/<path in the version folder> + manifest.json."""
    files = manager.verified_files(version)
    folder = manager.folder(version)
    entries = []
    for f in version.files:
        rel = files[f.role].relative_to(folder).as_posix()
        entries.append({"role": f.role, "name": f"files/{rel}", "sha256": f.sha256,
                        "size_bytes": f.size_bytes})
    manifest = {"format": BUNDLE_FORMAT, "bundle_version": BUNDLE_VERSION,
                "task": version.task, "model_type": version.model_type, "name": version.name,
                "display_name": version.display_name, "description": version.description,
                "classes": version.classes, "metrics": version.metrics,
                "dataset": version.dataset, "created_at": version.created_at,
                "lineage": version.lineage, "files": entries}
    out = Path(out)
    with atomic_path(out) as tmp:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("manifest.json", json.dumps(manifest, indent=2))
            for f, entry in zip(version.files, entries):
                zf.write(files[f.role], entry["name"])
    return out


def import_model(manager: ModelManager, path: Path, *, task: str | None = None,
                 name: str | None = None, trusted: bool = False) -> ModelVersion:
    """Register a bundle (.zip) or a bare ultralytics .pt file as a new, imported version."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelError("no such file", path=path, hint="pass a bundle (.zip) or a .pt file")
    if zipfile.is_zipfile(path) and path.suffix.lower() == ".zip":
        version = _import_bundle(manager, path, name)
    elif path.suffix.lower() == ".pt":
        if task is None and trusted:        # the user vouches for it: ask the file itself
            trust.trust_file(manager.conn, path)
            task = read_yolo_classes(manager.conn, path)[1]
        version = _import_weights(manager, path, task, name)
    else:
        raise ModelError("not a LabelLoop bundle (.zip) or an ultralytics .pt file", path=path,
                         hint="export a bundle with `models export ID --format bundle`")
    return manager.trust(version.id) if trusted else version


# -- bundles ---------------------------------------------------------------------------------

def _import_bundle(manager: ModelManager, path: Path, name: str | None) -> ModelVersion:
    with zipfile.ZipFile(path) as zf:
        manifest = _read_manifest(zf, path)
        entries = _check_entries(zf, manifest, path)
        _refuse_duplicate(manager, entries)
        folder, tmp = _new_folder(manager, manifest["task"], name or manifest["name"])
        try:
            for entry in entries:
                _extract(zf, entry, tmp, path)
            os.replace(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    try:
        return _register(manager, folder, manifest, name, path)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _read_manifest(zf: zipfile.ZipFile, path: Path) -> dict:
    try:
        info = zf.getinfo("manifest.json")
    except KeyError:
        raise ModelError("this zip has no manifest.json: not a LabelLoop bundle",
                         path=path) from None
    if info.file_size > MAX_MANIFEST_BYTES:
        raise ModelError("manifest.json is too large", path=path)
    try:
        manifest = json.loads(zf.read(info).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ModelError(f"manifest.json is not valid JSON ({type(exc).__name__})",
                         path=path) from None
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise ModelError("not a LabelLoop model bundle", path=path, field="manifest.format")
    if manifest.get("bundle_version") != BUNDLE_VERSION:
        raise ModelError(f"bundle version {manifest.get('bundle_version')!r} is not supported",
                         path=path, hint="export it again with this LabelLoop version")
    _check_fields(manifest, path)
    return manifest


def _check_fields(manifest: dict, path: Path) -> None:
    types = {"task": str, "model_type": str, "name": str, "classes": list, "metrics": dict,
             "dataset": dict, "lineage": list, "files": list}
    for key, kind in types.items():
        if not isinstance(manifest.get(key), kind):
            raise ModelError(f"manifest field {key!r} is missing or not a {kind.__name__}",
                             path=path, field=key)
    if manifest["task"] not in KNOWN_TASKS:
        raise ModelError(f"unknown task {manifest['task']!r}", path=path, field="task")
    if not all(isinstance(c, str) for c in manifest["classes"]):
        raise ModelError("class names must be strings", path=path, field="classes")


def _check_entries(zf: zipfile.ZipFile, manifest: dict, path: Path) -> list[dict]:
    entries, total, roles = [], 0, set()
    for entry in manifest["files"]:
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str)
                                                  for k in ("role", "name", "sha256")):
            raise ModelError("a files entry lacks role/name/sha256", path=path, field="files")
        rel = _safe_member(entry["name"], path)
        try:
            info = zf.getinfo(entry["name"])
        except KeyError:
            raise ModelError(f"the bundle lacks {entry['name']}", path=path) from None
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            raise ModelError(f"{entry['name']} is a symbolic link", path=path)
        total += info.file_size
        if total > MAX_BUNDLE_BYTES:
            raise ModelError(f"the bundle unpacks to more than {MAX_BUNDLE_BYTES >> 20} MB",
                             path=path, hint="raise LABELLOOP_MAX_BUNDLE_BYTES if intended")
        if entry["role"] != file_role(rel) or entry["role"] in roles:
            raise ModelError(f"file role {entry['role']!r} does not match {rel}", path=path)
        roles.add(entry["role"])
        entries.append({**entry, "rel": rel, "size": info.file_size})
    if "weights" not in roles:
        raise ModelError("the bundle has no weights file", path=path)
    return entries


def _safe_member(name: str, path: Path) -> str:
    rel = name[len("files/"):] if name.startswith("files/") else ""
    parts = rel.split("/")
    if not rel or name.startswith("/") or "\\" in name or any(p in ("", ".", "..")
                                                              for p in parts):
        raise ModelError(f"unsafe file name in bundle: {name[:200]!r}", path=path)
    return rel


def _refuse_duplicate(manager: ModelManager, entries: list[dict]) -> None:
    weights = next(e["sha256"] for e in entries if e["role"] == "weights")
    for version_id in repo.versions_with_file(manager.conn, weights):
        raise ModelError(f"this model is already registered here as version {version_id}",
                         field="weights", hint=f"use version {version_id}")


def _extract(zf: zipfile.ZipFile, entry: dict, folder: Path, path: Path) -> None:
    target = folder / entry["rel"]
    target.parent.mkdir(parents=True, exist_ok=True)
    with zf.open(entry["name"]) as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    if trust.sha256_file(target) != entry["sha256"]:
        raise ModelError(f"{entry['name']} does not match its sha256 in the manifest "
                         f"(damaged or altered bundle); nothing was imported", path=path)


def _new_folder(manager: ModelManager, task: str, name: str) -> tuple[Path, Path]:
    """models/<task>/<name>/imported-<n>/ and a temp folder beside it to fill first."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80].strip(".") \
        or "model"
    parent = manager.project.models_dir / task / safe
    parent.mkdir(parents=True, exist_ok=True)
    n = 1
    while (parent / f"imported-{n}").exists():
        n += 1
    return parent / f"imported-{n}", Path(tempfile.mkdtemp(dir=parent, prefix=".import-"))


def _register(manager: ModelManager, folder: Path, manifest: dict, name: str | None,
              source: Path) -> ModelVersion:
    project, conn = manager.project, manager.conn
    files = scan_files(project, folder)
    weights = next(f for f in files if f.role == "weights")
    lineage = [_entry(e) for e in manifest["lineage"] if isinstance(e, dict)]
    parent = _local_parent(manager, lineage)
    return repo.add_model_version(conn, ModelVersion(
        task=manifest["task"], name=name or manifest["name"], version=0,
        path=weights.path, format=Path(weights.path).suffix.lstrip("."),
        metrics={k: v for k, v in manifest["metrics"].items()
                 if isinstance(v, (int, float))},
        display_name=str(manifest.get("display_name") or "")[:200] or None,
        description=str(manifest.get("description") or "")[:10_000],
        model_type=manifest["model_type"][:20], classes=manifest["classes"],
        dataset={**{k: manifest["dataset"].get(k) for k in ("name", "version", "hash")},
                 "imported_from": str(source)},
        parent_id=parent, lineage=lineage, origin="imported"), files)


def _entry(entry: dict) -> dict:
    return {k: str(entry.get(k))[:200] if entry.get(k) is not None else None
            for k in ("display_name", "task", "created_at", "weights_sha256")}


def _local_parent(manager: ModelManager, lineage: list[dict]) -> int | None:
    """The nearest ancestor that is also registered here (matched by weights content)."""
    if lineage and lineage[0].get("weights_sha256"):
        found = repo.versions_with_file(manager.conn, lineage[0]["weights_sha256"])
        return found[0] if found else None
    return None


# -- bare ultralytics weights --------------------------------------------------------------

def _import_weights(manager: ModelManager, path: Path, task: str | None,
                    name: str | None) -> ModelVersion:
    """A .pt from elsewhere: copied in, registered untrusted, classes read once trusted."""
    if task not in MODEL_TASKS:        # a SAM adapter travels only as a bundle
        raise ModelError(f"importing a bare .pt needs its task, not {task!r}", field="--task",
                         hint=f"pass --task, one of {', '.join(MODEL_TASKS)}")
    entries = [{"sha256": trust.sha256_file(path), "role": "weights"}]
    _refuse_duplicate(manager, entries)
    folder, tmp = _new_folder(manager, task, name or path.stem)
    try:
        shutil.copyfile(path, tmp / "model.pt")
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    files = scan_files(manager.project, folder)
    if files[0].sha256 != entries[0]["sha256"]:
        shutil.rmtree(folder, ignore_errors=True)
        raise ModelError("the file changed while it was being imported", path=path)
    return repo.add_model_version(manager.conn, ModelVersion(
        task=task, name=name or path.stem, version=0, path=files[0].path, format="pt",
        model_type="yolo", dataset={"imported_from": str(path)}, origin="imported"), files)


def read_yolo_classes(conn, weights: Path) -> tuple[list[str], str]:
    """(class names, task) of an ultralytics file, read only once it is trusted."""
    from ultralytics import YOLO

    trust.require_trusted(conn, weights)
    model = YOLO(str(weights))
    names = model.names
    ordered = [str(names[i]) for i in sorted(names)] if isinstance(names, dict) else \
        [str(n) for n in names]
    return ordered, model.task
