"""A reference web app embedding reqmgmt (Flask): ``python -m examples.webapp``.

See docs/embedding.md.  Flask is the example's dependency (the ``webapp``
extra), not the library's.
"""

from __future__ import annotations

from .app import create_app, open_desk

__all__ = ["create_app", "open_desk"]
