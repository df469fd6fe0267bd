"""Charts labelled in Chinese (``lang="zh"``), in a font with Chinese characters.

pytest turns warnings into errors: a glyph matplotlib cannot draw warns, so
a zh chart drawn in a font without Chinese characters fails here.  Without
any such font installed, the rendering test is skipped, except under
CI=true, where it fails (.ci/run installs fonts-wqy-microhei).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from reqmgmt import Desk
from reqmgmt.cli import main
from reqmgmt.errors import ConfigError, ValidationError
from reqmgmt.i18n import has_cjk
from reqmgmt.reports import Report

pytest.importorskip("matplotlib")

from reqmgmt import reports


def _font_or_skip() -> str:
    try:
        return reports.cjk_font()
    except ConfigError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"a font with Chinese characters is required under CI=true: {exc}")
        pytest.skip(f"no font with Chinese characters here: {exc}")


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    url = f"sqlite:///{tmp_path_factory.mktemp('zh') / 'r.db'}"
    assert main(["demo", "--db", url]) == 0
    with Desk.open(url) as desk:
        return desk.report()


def _spy_on_figures(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Record each chart's texts and fonts as charts() closes its figure."""
    import matplotlib.pyplot as pyplot

    seen: list[dict[str, Any]] = []
    close = pyplot.close

    def spy(fig: Any) -> None:
        ax = fig.axes[0]
        seen.append(
            {
                "title": ax.get_title(),
                "labels": [ax.get_xlabel(), ax.get_ylabel()],
                "ticks": [t.get_text() for t in ax.get_yticklabels()],
                "font": ax.title.get_fontname(),
            }
        )
        close(fig)

    monkeypatch.setattr(pyplot, "close", spy)
    return seen


def test_zh_charts_render_in_chinese_without_a_warning(
    demo_report: Report, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    font = _font_or_skip()
    seen = _spy_on_figures(monkeypatch)
    paths = reports.charts(demo_report, tmp_path, lang="zh")
    assert [p.name for p in paths] == ["dwell.png", "complaints_by_month.png"]
    for path in paths:
        assert path.read_bytes().startswith(b"\x89PNG")
    dwell, complaints = seen
    assert dwell["title"] == "各状态停留时间：记录在哪里等待"
    assert complaints["title"] == "每月客诉与退货"
    assert has_cjk(dwell["labels"][0])
    assert has_cjk(complaints["labels"][1])
    # The kinds and states by their Chinese names.
    assert "客户需求 / 已完成" in dwell["ticks"], dwell["ticks"]
    assert all(has_cjk(t) for t in dwell["ticks"])
    assert dwell["font"] == complaints["font"] == font


def test_en_charts_stay_english(
    demo_report: Report, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _spy_on_figures(monkeypatch)
    reports.charts(demo_report, tmp_path)
    assert [s["title"] for s in seen] == [
        "Dwell per state: where records wait",
        "Complaints and returns per month",
    ]
    assert "contract / in_fulfilment" in seen[0]["ticks"]


def test_cli_report_lang_zh(demo_report: Report, tmp_path: Path) -> None:
    _font_or_skip()
    url = f"sqlite:///{tmp_path / 'r.db'}"
    assert main(["demo", "--db", url]) == 0
    out = tmp_path / "charts"
    args = ["report", "--db", url, "--format", "png", "--lang", "zh", "--out", str(out)]
    assert main(args) == 0
    assert (out / "dwell.png").read_bytes().startswith(b"\x89PNG")


def test_no_cjk_font_is_a_clear_error(
    demo_report: Report, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """None of the known fonts installed: the error says how to install one."""
    monkeypatch.setattr(reports, "CJK_FONTS", ("No Such Font For Sure",))
    monkeypatch.setattr(reports, "_CJK_FILES", ("no-such-font-file",))
    monkeypatch.delenv(reports.CJK_FONT_ENV, raising=False)
    with pytest.raises(ConfigError) as caught:
        reports.charts(demo_report, tmp_path / "c", lang="zh")
    assert "apt-get install fonts-noto-cjk" in str(caught.value)
    assert reports.CJK_FONT_ENV in str(caught.value)
    assert not (tmp_path / "c").exists()


def test_a_font_file_without_chinese_is_refused(
    demo_report: Report, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from matplotlib import font_manager

    latin = font_manager.findfont("DejaVu Sans")
    with pytest.raises(ConfigError, match="no Chinese characters"):
        reports.charts(demo_report, tmp_path, lang="zh", font=latin)
    monkeypatch.setenv(reports.CJK_FONT_ENV, str(tmp_path / "missing.ttf"))
    with pytest.raises(ConfigError, match="no such file"):
        reports.charts(demo_report, tmp_path, lang="zh")
    with pytest.raises(ValidationError):
        reports.charts(demo_report, tmp_path, lang="fr")


def test_a_font_file_named_is_used(
    demo_report: Report, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from matplotlib import font_manager

    name = _font_or_skip()
    path = font_manager.findfont(name, fallback_to_default=False)
    monkeypatch.setenv(reports.CJK_FONT_ENV, path)
    seen = _spy_on_figures(monkeypatch)
    reports.charts(demo_report, tmp_path, lang="zh")
    assert seen[0]["font"] == name
