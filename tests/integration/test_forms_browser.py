"""A real browser opens each HTML form and reads its signatures table (issue 14 #16).

Headless Chromium from Debian's packages (.ci/run installs it): its
``--dump-dom`` is the document as the browser built it, which the test reads.
Skipped with the reason when no Chromium is found; failed under CI=true.
``REQMGMT_CHROMIUM`` names the binary when it is not on PATH.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from reqmgmt import Desk
from reqmgmt.demo import run_demo
from reqmgmt.forms import FORMS, forms_for

from .formpage import FormPage

HEADERS = ["签名人 signed by", "部门 department", "时间 when", "意见 opinion", "结论 decision",
           "签名含义 meaning", "事项 step"]  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    """The demo's records in a SQLite file (`reqmgmt demo --db ...`)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'demo.db'}"
    assert run_demo(url, io.StringIO()) == 0
    with Desk.open(url, create=False) as desk:
        yield desk


def _chromium() -> str:
    found = os.environ.get("REQMGMT_CHROMIUM") or next(
        filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None
    )
    if found is None:
        reason = "no Chromium found (apt-get install chromium; .ci/run installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"Chromium is required under CI=true: {reason}")
        pytest.skip(reason)
    return found


def _dump_dom(browser: str, page: Path) -> str:
    profile = page.with_suffix(".profile")
    result = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, encoding="utf-8", timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_chromium_opens_each_form_and_finds_its_signatures(demo: Desk, tmp_path: Path) -> None:
    browser = _chromium()
    # Each form once, for the first demo record it applies to with signatures.
    pages: list[tuple[str, str, Path, int]] = []
    chosen: set[str] = set()
    for record in demo.query():
        events = demo.history(record.ref)
        for spec in forms_for(record, events):
            html = demo.form(record.ref, spec.name)
            if spec.name in chosen or 'class="signature"' not in html:
                continue
            chosen.add(spec.name)
            path = tmp_path / f"{record.ref}-{spec.name}.html"
            path.write_text(html, encoding="utf-8")
            pages.append((record.ref, spec.name, path, record.version))
    assert {name for _, name, _, _ in pages} == set(FORMS)
    with ThreadPoolExecutor(max_workers=3) as pool:
        doms = list(pool.map(lambda p: _dump_dom(browser, p[2]), pages))
    signed: set[str] = set()
    for (ref, name, path, version), dom in zip(pages, doms, strict=True):
        built = FormPage(dom)
        source = FormPage(path.read_text(encoding="utf-8"))
        spec = FORMS[name]
        assert built.title == f"{spec.zh} {spec.en}", (ref, name)
        assert built.signature_headers == HEADERS, (ref, name)
        # The browser built the same signature rows the form was written with.
        assert built.signatures == source.signatures, (ref, name)
        for row in built.signatures:
            assert row["actor"].endswith(f"({row['data-actor']})"), (ref, name, row)
            assert row["at"][:2] == "20", (ref, name, row)
            assert 1 <= int(row["data-version"]) <= version, (ref, name, row)
            assert row["step"], (ref, name, row)
        if built.signatures:
            signed.add(name)
    assert signed == set(FORMS)
