"""Argument types shared by the command modules."""
from __future__ import annotations

import argparse

_MAX_ROW_ID = 2 ** 63 - 1      # SQLite's INTEGER


def row_id(text: str) -> int:
    """argparse type of a database id: a whole number SQLite can hold (1..2**63-1)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text[:40]!r}") from None
    if not 1 <= value <= _MAX_ROW_ID:
        raise argparse.ArgumentTypeError(f"{text[:40]} is not an id (1..{_MAX_ROW_ID})")
    return value
