"""Opening SAM for a project: the engine (weights from the project's models/base), its
embedding cache under the project, and an object's start mask from an annotation."""
from __future__ import annotations

import numpy as np

from src.db import annotations as annotations_repo
from src.db import frames as frames_repo
from src.db.project import Project
from src.db.records import MediaSource
from src.errors import AnnotationError
from src.training.sam.embeddings import EmbeddingCache, cache_dir
from src.training.sam.engine import SamEngine
from src.training.sam.polygon import polygon_to_mask
from src.training.sam.weights import DEFAULT_MODEL, find_weights

_ENGINES: dict[tuple, SamEngine] = {}


def load_engine(project: Project, name: str = DEFAULT_MODEL, *, image_size: int = 1024,
                untrained: bool = False) -> SamEngine:
    """The engine for `name`, loaded once per process (SamWeightsMissing says what to do)."""
    weights = find_weights(name, project.base_weights_dir, untrained=untrained)
    key = (weights.name, str(weights.path), image_size)
    if key not in _ENGINES:
        _ENGINES[key] = SamEngine.load(weights, image_size=image_size)
    return _ENGINES[key]


def project_cache(project: Project, engine: SamEngine) -> EmbeddingCache:
    return EmbeddingCache(engine, cache_dir(project.root, engine))


def object_mask(project: Project, source: MediaSource, frame_index: int, annotation_id: int
                ) -> tuple[np.ndarray, int]:
    """(mask, class id) of annotation `annotation_id` (box or polygon) on `frame_index`."""
    ann = annotations_repo.get_annotation(project.conn, annotation_id)
    frame = frames_repo.get_frame_at(project.conn, source.id, frame_index)
    if ann is None or frame is None or ann.frame_id != frame.id or ann.kind == "tag":
        raise AnnotationError(f"no box or polygon {annotation_id} on frame {frame_index} of "
                              f"{source.name}", field="--object",
                              hint="pass the id of an annotation on --from-frame "
                                   "(`proposals list` / the annotator shows ids)")
    if ann.kind == "box":
        x1, y1, x2, y2 = ann.geometry
        poly = [[x1, y1], [x2, y1], [x2, y2], [x1, y2]]
    else:
        poly = ann.geometry
    return polygon_to_mask(poly, frame.height, frame.width), ann.class_id
