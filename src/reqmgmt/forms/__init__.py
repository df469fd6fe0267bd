"""The seed's paper forms (表单), rendered from a record and its audit trail.

``desk.form(ref, name)`` returns the form as HTML (Jinja2 templates with print
CSS, zh-CN labels with English beside); :func:`render_pdf` turns that HTML
into PDF through WeasyPrint (the optional extra ``forms``).  See docs/forms.md.
"""

from __future__ import annotations

from .forms import FORMS, FormSpec, forms_for, render_form, render_pdf

__all__ = ["FORMS", "FormSpec", "forms_for", "render_form", "render_pdf"]
