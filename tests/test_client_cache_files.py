"""The offline cache's files (seizure_stats.answer_cache): what a job sharing the cache with
another one finds in them, and who may read them."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest

from seizure_stats import atomic_files
from seizure_stats.answer_cache import AnswerCache, Question

STATS_ANSWER = {"snapshot": 4, "content_hash": "sha256:04", "pos_weight": 2.0}


def current_question() -> Question:
    return Question.of("http://stats.test", "d", "stats", {"patient": ["p1"]}, {"strict": True})


def test_a_later_answer_about_another_snapshot_never_takes_the_pinned_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Job A keeps its answer about snapshot 4; job B, sharing the cache, keeps its answer about
    snapshot 5 to the same question just after A's file took its place, before A is done."""
    cache = AnswerCache(tmp_path)
    question = current_question()
    place = cache.path_of(question, ".json")
    replace = os.replace
    later = {"done": False}

    def replace_then_let_b_write(source: Any, destination: Any) -> None:
        replace(source, destination)
        if Path(destination) == place and not later["done"]:
            later["done"] = True
            cache.store_json(question, STATS_ANSWER | {"snapshot": 5, "content_hash": "sha256:05"})

    monkeypatch.setattr(atomic_files.os, "replace", replace_then_let_b_write)
    cache.store_json(question, STATS_ANSWER)
    assert later["done"]
    monkeypatch.setattr(atomic_files.os, "replace", replace)

    for snapshot in (4, 5):
        found = cache.load_json(question.pinned(snapshot))
        assert found is not None
        record, answer = found
        assert (record.snapshot, answer["snapshot"]) == (snapshot, snapshot)
    found = cache.load_json(question)
    assert found is not None
    assert found[1]["snapshot"] == 5  # B's, the last to take its place
    assert not [p.name for p in tmp_path.rglob(".*") if p.is_file()]  # no temporary file left


@pytest.mark.parametrize("umask", [0o002, 0o022])
def test_cache_files_have_the_mode_of_any_new_file(tmp_path: Path, umask: int) -> None:
    cache = AnswerCache(tmp_path / "cache")
    question = current_question()
    previous = os.umask(umask)
    try:
        cache.store_json(question, STATS_ANSWER)
        cache.store_npz(question, empty_zip(), 4, "sha256:04", {})
        writer = cache.index_writer(question, 4, "sha256:04", {})
        writer.write_line('{"cache_file": "a_windows.npz", "window_idx": 2}')
        writer.commit()
    finally:
        os.umask(previous)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) == 6  # three answers, each under its pinned name too
    assert {oct(p.stat().st_mode & 0o777) for p in files} == {oct(0o666 & ~umask)}
    folders = [p for p in tmp_path.rglob("*") if p.is_dir()]
    assert {oct(p.stat().st_mode & 0o777) for p in folders} == {oct(0o777 & ~umask)}


def empty_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w"):
        pass
    return buffer.getvalue()
