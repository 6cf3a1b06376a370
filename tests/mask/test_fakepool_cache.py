"""Pools of fake values kept between runs: the same values as a fresh draw, or a fresh draw."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from datastage.mask import fakepool


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("DATASTAGE_CACHE_DIR", str(tmp_path))
    fakepool._pool.cache_clear()
    yield tmp_path / "fakepools"
    fakepool._pool.cache_clear()


def test_a_kept_pool_is_the_drawn_pool(cache: Path) -> None:
    drawn = fakepool.draw_pool("en_US", "last_name", 300, ())
    first = fakepool.fake_pool("en_US", "last_name", 300)
    files = list(cache.glob("*.json"))
    assert first == drawn and len(files) == 1
    fakepool._pool.cache_clear()
    files[0].write_text('["Kept"]')  # what the next run reads is the file
    assert fakepool.fake_pool("en_US", "last_name", 300) == ("Kept",)


def test_a_damaged_or_foreign_file_is_drawn_again(cache: Path) -> None:
    drawn = fakepool.fake_pool("en_US", "city", 50)
    (path,) = cache.glob("*.json")
    for damaged in ("not json", '{"a": 1}', "[1, 2]", '["x"]' * 2, "[" + ", ".join(['"x"'] * 51) + "]"):
        path.write_text(damaged)
        fakepool._pool.cache_clear()
        assert fakepool.fake_pool("en_US", "city", 50) == drawn, damaged


def test_other_arguments_other_files_and_only_text_is_kept(cache: Path) -> None:
    fakepool.fake_pool("en_US", "city", 40)
    fakepool.fake_pool("en_US", "city", 41)
    fakepool.fake_pool("de_DE", "city", 40)
    dates = fakepool.fake_pool("en_US", "date_of_birth", 20)
    assert len(list(cache.glob("*.json"))) == 3
    assert len(dates) == 20 and not isinstance(dates[0], str)


def test_an_empty_cache_setting_keeps_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATASTAGE_CACHE_DIR", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    fakepool._pool.cache_clear()
    try:
        assert fakepool.cache_dir() is None
        assert len(fakepool.fake_pool("en_US", "city", 30)) == 30
        assert list(tmp_path.iterdir()) == []
    finally:
        fakepool._pool.cache_clear()


def test_pool_random_draws_what_random_draws() -> None:
    names = tuple(f"n{i}" for i in range(500))
    weights = tuple(float(i % 7 + 1) for i in range(500))
    plain, pooled = random.Random(11), fakepool.PoolRandom(11)
    expected = [plain.choices(names, weights)[0] for _ in range(2000)] + [plain.random()]
    assert [pooled.choices(names, weights)[0] for _ in range(2000)] + [pooled.random()] == expected
