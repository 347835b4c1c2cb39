"""The demo's last step: the model it just trained proposes labels on the demo video's
frames nobody captured, so the annotator opens on proposals to accept or fix."""
from __future__ import annotations

from src.data.demo import VIDEO_NAME
from src.db import frames as frames_repo
from src.db import model_versions as versions_repo
from src.db import sources as sources_repo
from src.db.project import Project
from src.db.records import TrainingRun
from src.training.inference.media import open_input
from src.training.inference.predictor import create_predictor
from src.training.inference.run import StoreSummary, store_predictions


def propose_on_uncaptured(project: Project, run: TrainingRun, *, conf: float = 0.25,
                          device: str = "auto", progress=None) -> StoreSummary | None:
    """Predict with `run`'s registered model on the uncaptured frames of the demo video and
    store the proposals; None when the run registered no model."""
    version = next((m for m in versions_repo.list_model_versions(project.conn)
                    if m.run_id == run.id), None)
    if version is None:
        return None
    source = sources_repo.find_source(project.conn, VIDEO_NAME)
    captured = {f.frame_index for f in frames_repo.list_frames(project.conn, source.id)}
    indices = [i for i in range(source.frame_count) if i not in captured]
    predictor = create_predictor(version, project=project, conf=conf, device=device, batch=16)
    with open_input(str(source.id), project) as media:
        return store_predictions(project, media, version, predictor, indices,
                                 progress=progress)
