"""Files shared by the importers and exporters: JSON read with located errors and a size
limit, image references confined to the dataset, images linked or copied."""
from __future__ import annotations

import json
from pathlib import Path

from src.data import limits
from src.data.video import IMAGE_EXTENSIONS
from src.platform_support import link_or_copy
from src.errors import DatasetError


def read_json(path: Path):
    """Parse a JSON file; a bad, too large or too deeply nested file is a DatasetError
    naming it (and the line/column, or the limit)."""
    try:
        size = path.stat().st_size
        if size > limits.JSON_BYTES.value():
            raise DatasetError(f"this JSON file is too large to import: "
                               f"{limits.JSON_BYTES.exceeded(size)}", path=path)
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"line {exc.lineno} column {exc.colno}: invalid JSON ({exc.msg})",
                           path=path) from exc
    except RecursionError:
        raise DatasetError("JSON nested too deeply to be an annotation file",
                           path=path) from None
    except ValueError as exc:           # an integer of more than 4300 digits
        raise DatasetError(f"invalid JSON ({exc})", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read ({exc})", path=path) from exc


def resolve_image_ref(root: Path, ref, images_dir: Path | None = None, *, path: Path,
                      field: str, subdirs: tuple[str, ...] = (".",)) -> Path:
    """The image file an annotation names, resolved (symlinks followed).

    `ref` is looked for in `images_dir` (as written, then by its file name) and in each of
    `subdirs` of `root`; it must end up inside `root` or `images_dir`: a `..`, absolute or
    symlinked reference reaching anywhere else is refused, as are hidden files and files
    that are not images. `path`/`field` name the entry in the errors.
    """
    if not isinstance(ref, str) or not ref.strip() or "\0" in ref:
        raise DatasetError(f"expected an image file name, got {_shown(ref)}", path=path,
                           field=field)
    bounds = [b.resolve() for b in (images_dir, root) if b is not None]
    tries = [images_dir / ref, images_dir / Path(ref).name] if images_dir is not None else []
    tries += [root / sub / ref for sub in subdirs]
    outside = None
    for candidate in tries:
        found = _existing_file(candidate, path, field)
        if found is None:
            continue
        if not any(found.is_relative_to(b) for b in bounds):
            outside = outside or found
            continue
        return _check_image_name(found, ref, path, field)
    if outside is not None:
        raise DatasetError(f"image {_shown(ref)} is outside the dataset folder (it resolves to "
                           f"{outside})", path=path, field=field,
                           hint="copy the image into the dataset folder, or pass the folder "
                                "that holds it with --images DIR")
    looked = ", ".join(dict.fromkeys(str(c.parent) for c in tries))
    raise DatasetError(f"image {_shown(ref)} not found (looked in {looked})", path=path,
                       field=field,
                       hint="pass the folder holding the images with --images DIR")


def _existing_file(candidate: Path, path: Path, field: str) -> Path | None:
    try:
        found = candidate.resolve()
        return found if found.is_file() else None
    except (OSError, RuntimeError, ValueError) as exc:   # too long, a symlink loop, NUL
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise DatasetError(f"unusable image path {str(candidate)[:200]!r} ({reason})",
                           path=path, field=field) from None


def _check_image_name(found: Path, ref: str, path: Path, field: str) -> Path:
    if found.name.startswith("."):
        raise DatasetError(f"image {_shown(ref)} is a hidden file", path=path, field=field,
                           hint="rename it without the leading dot")
    if found.suffix.lower() not in IMAGE_EXTENSIONS:
        raise DatasetError(f"{_shown(ref)} is not a supported image", path=path, field=field,
                           hint=f"use {', '.join(IMAGE_EXTENSIONS)} files")
    return found


def _shown(ref) -> str:
    """A reference as the messages quote it: repr (no raw newline), cut at 300 characters."""
    text = repr(ref) if not isinstance(ref, int) or abs(ref) < 10 ** 100 else "a huge number"
    return text if len(text) <= 300 else text[:297] + "..."


def place_file(source: Path, target: Path) -> None:
    """Hard-link `source` to `target`, or copy it where links are not possible."""
    if not source.is_file():
        raise DatasetError("image file is missing", path=source,
                           hint="re-capture the frame or delete it from the project")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        link_or_copy(source, target)
    except FileExistsError:
        raise DatasetError("two images would be exported under the same name", path=target,
                           hint="a bug in the exporter's naming; please report it") from None
