"""``python -m examples.webapp [--db URL] [--demo] [--port N]``: serve the app on 127.0.0.1."""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from reqmgmt import NoDatabase
from reqmgmt.demo import run_demo

from .app import create_app, open_desk
from .people import PEOPLE
from .serve import PooledServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.webapp", description=__doc__)
    parser.add_argument(
        "--db",
        default="sqlite:///reqmgmt.db",
        help="the database (default: the one `reqmgmt demo` writes)",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="run `reqmgmt demo` into --db first when it does not exist yet",
    )
    parser.add_argument("--port", type=int, default=5000, help="port on 127.0.0.1 (0: any free)")
    parser.add_argument(
        "--check", action="store_true", help="render every person's inbox once and exit (no server)"
    )
    args = parser.parse_args(argv)
    if args.demo and not _exists(args.db):
        run_demo(args.db, io.StringIO())
    try:
        desk = open_desk(args.db)
    except NoDatabase as err:
        print(f"{err}\nrun `reqmgmt demo` first, or pass --demo", file=sys.stderr)
        return 2
    app = create_app(desk)
    with desk:
        if args.check:
            return _check(app)
        server = PooledServer("127.0.0.1", args.port, app)
        print(f"reqmgmt web app on http://127.0.0.1:{server.server_port}/ (Ctrl-C stops it)")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
    return 0


def _exists(url: str) -> bool:
    """Whether ``url`` names an existing SQLite file (other databases: assumed to)."""
    if not url.startswith("sqlite:///"):
        return True
    return Path(url.removeprefix("sqlite:///").split("?")[0]).exists()


def _check(app: object) -> int:
    """Sign in as each person through Flask's test client and count their inbox rows."""
    from flask import Flask

    assert isinstance(app, Flask)
    client = app.test_client()
    client.get("/login")
    with client.session_transaction() as s:
        token = s["csrf"]
    for person in PEOPLE.values():
        client.post("/login", data={"person": person.id, "csrf": token})
        page = client.get("/inbox")
        if page.status_code != 200:
            print(f"{person.id}: inbox answered {page.status_code}", file=sys.stderr)
            return 1
        print(
            f"{person.id}: {page.get_data(as_text=True).count('<tr data-ref=')} record(s) to act on"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
