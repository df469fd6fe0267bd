"""The Django app that owns the Desk: opened once per process, on Django's database."""

from __future__ import annotations

import atexit

from django.apps import AppConfig
from django.conf import settings

from reqmgmt import Desk


def database_url(alias: str = "default") -> str:
    """Django's database as a SQLAlchemy URL: the same file or server, the same credentials."""
    db = settings.DATABASES[alias]
    engine = db["ENGINE"]
    if engine == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    if engine == "django.db.backends.postgresql":
        from sqlalchemy.engine import URL

        url = URL.create(
            "postgresql+psycopg",
            username=db.get("USER") or None,
            password=db.get("PASSWORD") or None,
            host=db.get("HOST") or None,
            port=int(db["PORT"]) if db.get("PORT") else None,
            database=db["NAME"],
        )
        return url.render_as_string(hide_password=False)
    raise ValueError(f"no reqmgmt store for the Django database engine {engine!r}")


class ReqmgmtConfig(AppConfig):
    name = "examples.django_host"
    label = "reqmgmt_host"
    desk: Desk | None = None

    def ready(self) -> None:
        # ready() may run more than once in a process (tests, some servers): one Desk.
        if type(self).desk is None:
            desk = Desk.open(
                database_url(),
                table_prefix="rq_",  # rq_records, rq_audit, ... beside Django's tables
                plugins=getattr(settings, "REQMGMT_PLUGINS", ()),
            )
            type(self).desk = desk
            atexit.register(desk.close)


def desk() -> Desk:
    """The process's Desk (after Django's setup)."""
    if ReqmgmtConfig.desk is None:
        raise RuntimeError("the reqmgmt host app is not in INSTALLED_APPS or not ready")
    return ReqmgmtConfig.desk
