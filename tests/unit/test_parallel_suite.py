"""The suite runs on every CPU (pytest-xdist) and loses nothing doing so."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

from hypothesis import settings

ROOT = Path(__file__).resolve().parents[2]


def test_the_suite_runs_on_every_cpu_by_default() -> None:
    """`pytest` (the README's command) runs on all CPUs, idle workers taking queued tests."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    addopts = config["tool"]["pytest"]["ini_options"]["addopts"]
    assert addopts[addopts.index("-n") + 1] == "auto"
    assert addopts[addopts.index("--dist") + 1] == "worksteal"
    extras = config["project"]["optional-dependencies"]
    assert any(dep.startswith("pytest-xdist>=") for dep in extras["test"])


def test_the_ci_profile_keeps_no_example_database() -> None:
    """Parallel workers do not share one .hypothesis directory under CI."""
    assert settings.get_profile("ci").database is None


def test_adversarial_figures_reach_the_summary_from_the_workers(tmp_path: Path) -> None:
    """Figures a test reports on a worker are printed by the main process at the end."""
    (tmp_path / "conftest.py").write_text(
        "from tests.adversarial.conftest import figures  # noqa: F401\n"
        "from tests.conftest import pytest_terminal_summary  # noqa: F401\n",
        encoding="utf-8",
    )
    (tmp_path / "test_figure.py").write_text(
        textwrap.dedent(
            """
            import pytest

            @pytest.mark.parametrize("n", [1, 2, 3, 4])
            def test_reports(figures, n):
                figures.append(f"figure {n} from a worker")
            """
        ),
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", "-q",
         "--rootdir", str(tmp_path), str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    summary = done.stdout.split("adversarial figures", 1)[1]
    assert sorted(line for line in summary.splitlines() if line.startswith("figure")) == [
        f"figure {n} from a worker" for n in (1, 2, 3, 4)
    ]
