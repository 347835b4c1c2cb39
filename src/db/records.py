"""Dataclasses the repositories take and return. No SQL or Qt here."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

ANNOTATION_KINDS = ("box", "polygon", "tag")
ANNOTATION_STATUSES = ("accepted", "proposed")
RUN_STATUSES = ("queued", "running", "paused", "completed", "cancelled", "failed")


@dataclass
class MediaSource:
    """A video file or an image folder registered in the project."""
    kind: str                      # 'video' | 'images'
    path: str                      # absolute path of the file or folder
    name: str                      # file or folder name, used on the CLI
    sha256: Optional[str] = None
    size_bytes: Optional[int] = None
    fps: Optional[float] = None    # None for image folders
    frame_count: int = 0
    width: Optional[int] = None
    height: Optional[int] = None
    id: Optional[int] = None
    created_at: Optional[str] = None


@dataclass
class Frame:
    """A captured frame: one image under the project's frames/ folder."""
    source_id: int
    frame_index: int
    image_path: str                # relative to the project folder
    width: int
    height: int
    timestamp_s: Optional[float] = None
    id: Optional[int] = None
    created_at: Optional[str] = None


@dataclass
class LabelClass:
    name: str
    color: str = "#e6194b"         # '#rrggbb'
    id: Optional[int] = None
    created_at: Optional[str] = None
    kind: str = "object"           # 'object' (boxes, polygons) | 'tag' (whole-frame label)


@dataclass
class Annotation:
    """A shape or a frame tag. Geometry in original-frame pixels:

    box: [x1, y1, x2, y2]; polygon: [[x, y], ...]; tag: None.
    source: 'manual' | 'imported' | 'model:<model version id>'.
    """
    frame_id: int
    class_id: int
    kind: str
    geometry: Any = None
    source: str = "manual"
    confidence: Optional[float] = None
    status: str = "accepted"
    id: Optional[int] = None
    created_at: Optional[str] = None
    updated_at: Optional[str] = None


@dataclass
class DatasetRecord:
    """A frozen dataset snapshot datasets/<name>/v<version>/."""
    name: str
    version: int
    task: str
    path: str                      # relative to the project folder
    config: dict = field(default_factory=dict)
    content_hash: str = ""
    summary: dict = field(default_factory=dict)
    id: Optional[int] = None
    created_at: Optional[str] = None


@dataclass
class TrainingRun:
    name: str
    task: str
    model_type: str                # 'yolo' | 'timm'
    config: dict = field(default_factory=dict)
    dataset_id: Optional[int] = None
    status: str = "queued"
    run_dir: Optional[str] = None
    base_model: Optional[str] = None
    error: Optional[str] = None
    pid: Optional[int] = None
    id: Optional[int] = None
    queued_at: Optional[str] = None
    started_at: Optional[str] = None
    finished_at: Optional[str] = None


@dataclass
class EpochMetrics:
    run_id: int
    epoch: int
    metrics: dict = field(default_factory=dict)
    created_at: Optional[str] = None


@dataclass
class ModelVersion:
    task: str
    name: str
    version: int
    path: str
    run_id: Optional[int] = None
    format: str = "pt"
    metrics: dict = field(default_factory=dict)
    is_active: bool = False
    id: Optional[int] = None
    created_at: Optional[str] = None
    display_name: Optional[str] = None   # '<task>-<YYYYmmdd-HHMMSS>-<metric>=<value>', renamable
    description: str = ""
    model_type: str = ""                 # 'yolo' | 'timm'
    classes: list = field(default_factory=list)
    dataset_id: Optional[int] = None
    dataset: dict = field(default_factory=dict)   # name, version, hash: kept if the row goes
    parent_id: Optional[int] = None      # the version it was fine-tuned from, in this project
    lineage: list = field(default_factory=list)   # ancestors, nearest first (survive import)
    origin: str = "trained"              # 'trained' | 'imported'
    files: list = field(default_factory=list)     # list[ModelFile]


MODEL_TASKS = ("detect", "segment", "classify", "crop_classifier")


@dataclass
class ModelFile:
    """One file of a model version: 'weights', 'metadata', 'model_config', 'adapter/<name>'."""
    role: str
    path: str                      # as stored: relative to the project when inside it
    sha256: str
    size_bytes: int
    version_id: Optional[int] = None
