"""Opening a store: existing databases only when asked, and a start-up without Alembic."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from reqmgmt import ConfigError, Desk, NoDatabase, ReqMgmtError, StoreUnavailable
from reqmgmt.storage import migrate


def test_the_head_revision_constant_is_the_last_migration_script() -> None:
    """HEAD_REVISION (checked at every open without Alembic) equals the scripts' head."""
    scripts = migrate.head_revision()
    assert scripts == migrate.HEAD_REVISION, (
        f"reqmgmt.storage.migrate.HEAD_REVISION is {migrate.HEAD_REVISION!r} but the migration "
        f"scripts end at {scripts!r}: set HEAD_REVISION = {scripts!r}"
    )


def test_open_existing_only_refuses_a_missing_file_and_creates_nothing(tmp_path: Path) -> None:
    """Desk.open(url, create=False): NoDatabase naming the URL and the way to create one."""
    url = f"sqlite:///{tmp_path / 'typo.db'}"
    with pytest.raises(NoDatabase, match=r"no file .*typo\.db.*reqmgmt db upgrade") as info:
        Desk.open(url, create=False)
    assert info.value.url == url
    assert isinstance(info.value, LookupError)
    assert isinstance(info.value, StoreUnavailable)
    assert list(tmp_path.iterdir()) == []


def test_open_existing_only_refuses_an_empty_database_and_memory(tmp_path: Path) -> None:
    """An empty file is left as it is; memory:// is new each time, so never existing."""
    (tmp_path / "empty.db").touch()
    with pytest.raises(NoDatabase, match="has no tables"):
        Desk.open(f"sqlite:///{tmp_path / 'empty.db'}", create=False)
    assert (tmp_path / "empty.db").read_bytes() == b""
    with pytest.raises(NoDatabase, match="memory:// store is new"):
        Desk.open("memory://", create=False)
    with pytest.raises(NoDatabase, match="in-memory SQLite"):
        Desk.open("sqlite://", create=False)


def test_open_creates_by_default_and_then_opens_existing_only(tmp_path: Path) -> None:
    """The library default is unchanged: a new file gets the schema; create=False opens it."""
    url = f"sqlite:///{tmp_path / 'new.db'}"
    Desk.open(url).close()
    with Desk.open(url, create=False) as desk:
        assert desk.query() == []


def test_a_missing_folder_and_a_refused_connection_are_store_unavailable(tmp_path: Path) -> None:
    """The environment's faults are library errors saying where, the password hidden."""
    with pytest.raises(StoreUnavailable, match=r"folder .*nope does not exist"):
        Desk.open(f"sqlite:///{tmp_path / 'nope' / 'x.db'}")
    with pytest.raises(StoreUnavailable, match=r"erp:\*\*\*@127\.0\.0\.1:1/erp") as info:
        Desk.open("postgresql+psycopg://erp:s3cret@127.0.0.1:1/erp")
    assert "s3cret" not in str(info.value)
    with pytest.raises(ConfigError, match="Can't load plugin"):
        Desk.open("postgresql+nosuchdriver://x/y")
    assert issubclass(StoreUnavailable, ReqMgmtError)


def test_a_host_store_may_ignore_create(tmp_path: Path) -> None:
    """A reqmgmt_open_store written for 0.1.0 (url only) still works."""
    import reqmgmt
    from reqmgmt import MemoryStore

    class OldStore:
        @reqmgmt.hookimpl
        def reqmgmt_open_store(self, url: str) -> MemoryStore | None:
            return MemoryStore() if url == "erp://main" else None

    desk = Desk.open("erp://main", plugins=[OldStore()], create=False)
    assert isinstance(desk.store, MemoryStore)


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code) + "\nimport sys; print(*sorted(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.split())


def test_import_reqmgmt_does_not_import_importlib_metadata() -> None:
    """`import reqmgmt` leaves importlib.metadata out; __version__ reads it when asked."""
    assert "importlib.metadata" not in _modules_after("import reqmgmt")
    version = subprocess.run(
        [sys.executable, "-c", "import reqmgmt; print(reqmgmt.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    from importlib.metadata import version as installed

    assert version == installed("reqmgmt")


def test_opening_a_current_database_imports_neither_alembic_nor_mako(tmp_path: Path) -> None:
    """Alembic and Mako are imported to migrate, not to open a database already current."""
    url = f"sqlite:///{tmp_path / 'current.db'}"
    created = _modules_after(f"from reqmgmt import Desk; Desk.open({url!r}).close()")
    assert "alembic" in created  # creating the schema migrates
    opened = _modules_after(f"from reqmgmt import Desk; Desk.open({url!r}).close()")
    assert not {m for m in opened if m.split(".")[0] in ("alembic", "mako")}
