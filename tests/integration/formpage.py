"""Reading a rendered form in tests: its field boxes, grids and signature rows."""

from __future__ import annotations

from html.parser import HTMLParser

__all__ = ["FormPage"]


class FormPage(HTMLParser):
    """The parts of a rendered form a test reads: field boxes, grids, signature rows."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self.blank_fields: set[str] = set()
        self.signatures: list[dict[str, str]] = []
        self.grid_cells: list[str] = []
        self.title = ""
        self.signature_headers: list[str] = []
        self._stack: list[tuple[str, dict[str, str]]] = []
        self._text: list[str] = []
        self._row: list[tuple[str, str]] = []
        self._row_attrs: dict[str, str] = {}
        self._table = ""
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":  # a void element: a line break between the zh and en labels
            self._text.append(" ")
            return
        a = {k: v or "" for k, v in attrs}
        if tag == "table":
            self._table = a.get("class", "")
        if tag == "tr":
            self._row, self._row_attrs = [], a
        if tag in {"td", "th", "h1"}:
            self._text = []
        self._stack.append((tag, a))

    def handle_endtag(self, tag: str) -> None:
        while self._stack:
            open_tag, a = self._stack.pop()
            if open_tag == tag:
                break
        text = " ".join("".join(self._text).split())
        if tag == "h1":
            self.title = text
        if tag in {"td", "th"}:
            self._row.append((a.get("class", ""), text))
        if tag == "tr":
            self._end_row()

    def _end_row(self) -> None:
        if self._table == "signatures" and not self.signature_headers:
            self.signature_headers = [t for _, t in self._row]
        elif self._table == "fields" and len(self._row) == 2:
            (_, label), (cls, value) = self._row
            self.fields[label] = value
            if "blank" in cls:
                self.blank_fields.add(label)
        elif (
            self._table == "signatures" and "signature" in self._row_attrs.get("class", "").split()
        ):
            names = ["actor", "department", "at", "opinion", "decision", "meaning", "step"]
            row = dict(zip(names, (t for _, t in self._row), strict=True))
            row.update(self._row_attrs)
            self.signatures.append(row)
        elif self._table == "grid":
            self.grid_cells += [t for _, t in self._row]

    def handle_data(self, data: str) -> None:
        self._text.append(data)

    def signed(self, event: str) -> list[dict[str, str]]:
        return [s for s in self.signatures if s["data-event"] == event]
