"""Store locations: a results store is a file path or a PostgreSQL URL, and a URL never goes
through ``Path()`` nor shows its password."""

from pathlib import Path

import pytest

from fairprune import paths

URL = "postgresql://fair:s3cr%40t@db.example.org:5433/fairprune"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (URL, True),
        ("postgresql+psycopg://fair@db/fairprune", True),
        ("  POSTGRESQL://fair@db/fairprune ", True),
        ("data/results.sqlite", False),
        ("/tmp/postgresql/results.sqlite", False),
        ("postgres://fair@db/fairprune", False),  # SQLAlchemy's old alias: not a store URL
        (Path("postgresql://fair@db/fairprune"), False),  # a Path is always a file
        (None, False),
    ],
)
def test_is_store_url(value, expected):
    assert paths.is_store_url(value) is expected


def test_a_url_stays_a_string_and_a_file_becomes_a_path():
    assert paths.as_location(f" {URL} ") == URL
    assert paths.as_location("a/b.sqlite") == Path("a/b.sqlite")
    # why: Path() collapses the URL's "//", leaving a file name nobody meant
    assert str(Path(URL)) == URL.replace("//", "/")


def test_results_location_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FAIRPRUNE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("FAIRPRUNE_RESULTS", raising=False)
    assert paths.results_location() == tmp_path / "results.sqlite"
    monkeypatch.setenv("FAIRPRUNE_RESULTS", URL)
    assert paths.results_location() == URL
    assert paths.results_path() == URL  # the old name, the same answer
    monkeypatch.setenv("FAIRPRUNE_RESULTS", str(tmp_path / "r.sqlite"))
    assert paths.results_location() == tmp_path / "r.sqlite"
    assert isinstance(paths.results_location(), Path)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (URL, "postgresql://fair:***@db.example.org:5433/fairprune"),
        ("postgresql://fair@db/fp", "postgresql://fair@db/fp"),
        (
            "postgresql://db/fp?user=a&password=pw&sslmode=require",
            "postgresql://db/fp?user=a&password=***&sslmode=require",
        ),  # fmt: skip
        ("postgresql+psycopg://a:p@ss@db/fp", "postgresql+psycopg://a:***@db/fp"),
        (Path("/srv/results.sqlite"), "/srv/results.sqlite"),
    ],
)
def test_display_location_masks_the_password(value, shown):
    assert paths.display_location(value) == shown
