"""Limits on what an untrusted file may cost to read, each raisable by an environment variable.

A 400 KB PNG can declare 20000x20000 pixels (1.2 GB decoded), a few hundred bytes of YAML
aliases can expand to a billion nodes, a JSON file can be larger than memory: every reader
checks the declared size against these limits BEFORE doing the expensive work, and the
error names the limit and the variable that raises it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from src.errors import LabelLoopError


@dataclass(frozen=True)
class Limit:
    env: str          # the environment variable that overrides the default
    default: int
    unit: str         # what is counted, for the message

    def value(self) -> int:
        raw = os.environ.get(self.env, "").strip()
        if not raw:
            return self.default
        try:
            value = int(raw.replace("_", ""))
        except ValueError:
            value = 0
        if value <= 0:
            raise LabelLoopError(f"{self.env}={raw!r} is not a positive whole number",
                                 field=self.env, hint=f"unset it or give a count of {self.unit}")
        return value

    def exceeded(self, found: int) -> str:
        """The message part saying which limit `found` exceeds and how to raise it."""
        return (f"{found:,} {self.unit} is over the limit of {self.value():,} {self.unit}"
                f" (set {self.env} to raise it)")


# 100 megapixels: a 12000x8000 photo fits; decoded as BGR that is 300 MB.
IMAGE_PIXELS = Limit("LABELLOOP_MAX_IMAGE_PIXELS", 100_000_000, "pixels")
# COCO train2017 (448 MB) needs it raised; Python holds ~10x a JSON file's size in memory.
JSON_BYTES = Limit("LABELLOOP_MAX_JSON_BYTES", 200 * 1024 * 1024, "bytes")
# Nodes of a YAML document once its aliases are expanded; data.yaml needs a few hundred.
YAML_NODES = Limit("LABELLOOP_MAX_YAML_NODES", 100_000, "YAML nodes")
