"""The stored "Suggest frames" ranking: replaced whole per source, best first, gone with
its source."""
from __future__ import annotations

import pytest

from src.db import sources as sources_repo
from src.db import suggestions as repo
from src.db.records import MediaSource
from src.db.suggestions import StoredSuggestion


@pytest.fixture
def two_sources(project) -> tuple[int, int]:
    return tuple(sources_repo.add_source(project.conn, MediaSource(
        "video", f"/videos/{name}.mp4", f"{name}.mp4", fps=25.0, frame_count=100)).id
        for name in ("a", "b"))


def _ranking(source_id: int, indices: list[int]) -> list[StoredSuggestion]:
    return [StoredSuggestion(source_id, rank, index, 1.0 / rank, f"why {index}")
            for rank, index in enumerate(indices, 1)]


def test_a_new_ranking_replaces_the_old_one_best_first(project, two_sources):
    a, b = two_sources
    repo.save_ranking(project.conn, a, _ranking(a, [7, 3, 9]))
    repo.save_ranking(project.conn, b, _ranking(b, [1]))
    repo.save_ranking(project.conn, a, _ranking(a, [4, 2]))
    assert [s.frame_index for s in repo.load_ranking(project.conn, a)] == [4, 2]
    assert [s.details for s in repo.load_ranking(project.conn, b)] == ["why 1"]
    assert repo.latest_ranked_source(project.conn) == a


def test_an_empty_ranking_clears_and_a_deleted_source_takes_its_ranking(project, two_sources):
    a, b = two_sources
    assert repo.latest_ranked_source(project.conn) is None
    repo.save_ranking(project.conn, a, _ranking(a, [5]))
    repo.save_ranking(project.conn, b, _ranking(b, [6]))
    repo.save_ranking(project.conn, a, [])
    assert repo.load_ranking(project.conn, a) == []
    sources_repo.delete_source(project.conn, b)
    assert repo.load_ranking(project.conn, b) == []
    assert repo.latest_ranked_source(project.conn) is None
