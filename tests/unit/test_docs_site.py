"""The docs site builds --strict without the network, and renders what mkdocs.yml promises."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import reqmgmt
from reqmgmt import make_plugin_manager
from reqmgmt.lifecycle import BUILTIN_LIFECYCLES

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One `mkdocs build --strict` of the repository's site, with every proxy pointing nowhere."""
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    dead = "http://127.0.0.1:9"  # the discard port: any download the build tries fails
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env[name] = dead
    for name in ("no_proxy", "NO_PROXY"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}\n{done.stderr}"
    return out


def page(site: Path, path: str) -> str:
    return (site / path / "index.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("kind", sorted(BUILTIN_LIFECYCLES))
def test_mermaid_diagrams_are_rendered_not_shown_as_code(site: Path, kind: str) -> None:
    """A lifecycle page's ```mermaid block becomes a <pre class="mermaid"> the theme draws."""
    html = page(site, f"lifecycles/{kind}")
    assert '<pre class="mermaid"><code>stateDiagram-v2' in html
    assert "language-mermaid" not in html, "the diagram is still a highlighted code block"


def test_the_theme_is_material_and_draws_mermaid(site: Path) -> None:
    """Material's bundle (which loads Mermaid for .mermaid blocks) is on every page."""
    html = page(site, "")
    bundle = re.search(r'src="(assets/javascripts/bundle\.[0-9a-f]+\.min\.js)"', html)
    assert bundle, "not a Material for MkDocs page"
    assert "mermaid" in (site / bundle.group(1)).read_text(encoding="utf-8")


def api_ids(site: Path) -> set[str]:
    ids: set[str] = set()
    for html in (site / "api").rglob("index.html"):
        ids.update(re.findall(r'id="(reqmgmt[\w.]*)"', html.read_text(encoding="utf-8")))
    return ids


def test_api_reference_documents_desk_fire(site: Path) -> None:
    """The API reference is generated from the docstrings: Desk.fire with its own docstring."""
    html = page(site, "api/desk")
    assert 'id="reqmgmt.Desk.fire"' in html
    first_line = reqmgmt.Desk.fire.__doc__.strip().splitlines()[0]  # type: ignore[union-attr]
    words = re.sub(r"``?", "", first_line).split()[:4]
    text = re.sub(r"<[^>]+>", "", html)
    assert " ".join(words) in " ".join(text.split())


@pytest.mark.parametrize("name", sorted(set(reqmgmt.__all__) - {"__version__"}))
def test_api_reference_lists_every_public_name(site: Path, name: str) -> None:
    """Every name in reqmgmt.__all__ has an entry in the API reference."""
    ids = api_ids(site)
    assert any(i == f"reqmgmt.{name}" or i.endswith(f".{name}") for i in ids), (
        f"{name} is not in the API reference (docs/api/*.md)"
    )


def test_api_reference_lists_every_hook(site: Path) -> None:
    """Every hook the plugin manager knows has an entry on the API hooks page."""
    hooks = sorted(n for n in dir(make_plugin_manager().hook) if n.startswith("reqmgmt_"))
    html = page(site, "api/hooks")
    missing = [h for h in hooks if f'id="reqmgmt.hookspecs.{h}"' not in html]
    assert hooks
    assert not missing


def test_api_reference_has_no_raw_sphinx_roles(site: Path) -> None:
    """:class:`X` in docstrings becomes code (linked where documented); `text::` ends in `:`."""
    found = set()
    pages = sorted((site / "api").rglob("index.html"))
    assert len(pages) >= 10
    for html in pages:
        text = html.read_text(encoding="utf-8")
        found.update(re.findall(r":(?:class|meth|func|mod|attr|data|exc):|\S::</p>", text))
    assert not found


def test_reports_page_shows_the_charts(site: Path) -> None:
    """docs/reports.md shows both report charts as pictures, and the build carries the files."""
    html = page(site, "reports")
    for name in ("dwell.png", "complaints_by_month.png"):
        assert re.search(rf'<img [^>]*src="\.\./img/{re.escape(name)}"', html), name
        assert (site / "img" / name).stat().st_size > 1000


def test_search_index_splits_chinese_words(site: Path) -> None:
    """The search index has the Chinese text cut into words (jieba), so 评审 finds a page."""
    index = json.loads((site / "search" / "search_index.json").read_text(encoding="utf-8"))
    text = " ".join(doc["text"] for doc in index["docs"])
    assert "\u200b评审\u200b" in text
    assert "\\u200b" in index["config"]["separator"]


def test_tools_beside_the_pages_are_not_published(site: Path) -> None:
    """The chart generator and its manifest stay out of the site."""
    assert (DOCS / "gen_charts.py").is_file()
    assert (DOCS / "img" / "charts.json").is_file()
    assert not (site / "gen_charts.py").exists()
    assert not (site / "img" / "charts.json").exists()


# --- the report charts in docs/img ------------------------------------------------------------


@pytest.fixture(scope="module")
def gen_charts() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_charts", DOCS / "gen_charts.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_charts_are_fresh(gen_charts: ModuleType) -> None:
    """docs/img holds the charts of the demo's current figures drawn by the current code."""
    problems = gen_charts.problems()
    assert not problems, "; ".join(problems) + "; run: python docs/gen_charts.py"


def test_stale_or_missing_charts_are_found(gen_charts: ModuleType, tmp_path: Path) -> None:
    """The freshness check sees a changed figure, a changed picture and a missing one."""
    shutil.copytree(DOCS / "img", tmp_path, dirs_exist_ok=True)
    manifest = json.loads((tmp_path / "charts.json").read_text(encoding="utf-8"))
    manifest["data_sha256"] = "0" * 64
    (tmp_path / "charts.json").write_text(json.dumps(manifest), encoding="utf-8")
    (tmp_path / "dwell.png").write_bytes(b"not the chart")
    (tmp_path / "complaints_by_month.png").unlink()
    problems = " | ".join(gen_charts.problems(tmp_path))
    assert "demo's figures changed" in problems
    assert "dwell.png is not the picture" in problems
    assert "complaints_by_month.png is missing" in problems
    (tmp_path / "charts.json").unlink()
    assert gen_charts.problems(tmp_path) == [f"{tmp_path / 'charts.json'} is missing"]


def test_embedding_page_shows_the_tested_apps_code_and_pictures(site: Path) -> None:
    """docs/embedding.md includes the web app's and the Django host's code from their files."""
    import html as htmllib

    shown = page(site, "embedding")
    text = htmllib.unescape(re.sub(r"<[^>]+>", "", shown))
    assert "def open_desk(url: str) -> Desk:" in text
    assert "class ReqmgmtConfig(AppConfig):" in text
    assert "def refused(request: HttpRequest, err: ReqMgmtError) -> JsonResponse:" in text
    assert "--8<--" not in text
    pictures = re.findall(r'src="([^"]*img/webapp/[^"]+\.png)"', shown)
    assert len(pictures) >= 4
    for src in pictures:
        assert (site / "embedding" / src).resolve().is_file(), src
