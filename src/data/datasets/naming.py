"""Names that become file or folder names: dataset names are checked, class names encoded."""
from __future__ import annotations

import re

from src.errors import DatasetError

_DATASET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# Windows refuses these as file or folder names whatever the extension.
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)),
             *(f"lpt{i}" for i in range(1, 10))}
# Characters kept as they are in a class folder name; every other one is %XX-encoded
# ('%' included), which keeps the encoding reversible and distinct names distinct.
_SAFE_CHARS = re.compile(r"[A-Za-z0-9_\- ]")
_REF = re.compile(r"^(?P<name>.+?)(?::v(?P<version>\d+))?$")


def is_reserved(name: str) -> bool:
    return name.split(".")[0].strip().lower() in _RESERVED


def check_dataset_name(name: str) -> str:
    """Return `name` if it is a safe dataset folder name, else raise DatasetError."""
    if not _DATASET_NAME.match(name or "") or ".." in name or is_reserved(name) \
            or name.endswith("."):
        raise DatasetError(
            f"'{name}' cannot be a dataset name", field="NAME",
            hint="use 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit,"
                 " no '..' and no reserved name such as CON or NUL")
    return name


def class_folder_name(name: str) -> str:
    """A folder name for a class: safe characters kept, the others %XX-encoded (UTF-8)."""
    out = []
    for i, char in enumerate(name):
        keep = _SAFE_CHARS.match(char) and not (char == " " and i in (0, len(name) - 1))
        out.append(char if keep else "".join(f"%{b:02X}" for b in char.encode("utf-8")))
    encoded = "".join(out)
    if is_reserved(encoded):
        encoded = "".join(f"%{b:02X}" for b in encoded[0].encode("utf-8")) + encoded[1:]
    return encoded


def parse_ref(ref: str) -> tuple[str, int | None]:
    """'NAME' -> (NAME, None); 'NAME:v3' -> (NAME, 3)."""
    match = _REF.match(ref.strip())
    if not match:
        raise DatasetError(f"'{ref}' is not a dataset reference", field="dataset",
                           hint="write NAME or NAME:vN, e.g. demo-det:v2")
    version = match.group("version")
    if version and (len(version) > 9 or not version.isascii()):   # SQLite's ints are 64-bit
        raise DatasetError(f"version {version[:20]} is not a version number", field="dataset",
                           hint="write NAME:vN with N as 'dataset list' shows it")
    return match.group("name"), int(version) if version else None
