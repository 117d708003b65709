"""Reports as people read them: structured report → Markdown → sanitised HTML, and citations.

A report dict comes from a model, so everything here treats it as untrusted: any key may be
missing or of the wrong type, and any string may carry HTML. `report_to_markdown` renders
whatever is usable and never raises; `render_html` is the only way a report becomes HTML,
and its output keeps no scripts, event handlers, styles or non-web links.
"""

from __future__ import annotations

import functools
import json
import re

# An inline citation: [S1], [S1, S3] or [S1; S3]. "[S1][S2]" is two markers.
CITATION_MARKER = re.compile(r"\[\s*(S\d+(?:\s*[,;]\s*S\d+)*)\s*\]")
_SOURCE_ID = re.compile(r"\bS\d+\b")
# Opens a paragraph that a report writer (the local engine) says about its own draft, not
# about the sources: the review checks do not ask it for citations.
ENGINE_NOTE = "*Offline draft note:*"

_ALLOWED_TAGS = {
    "p", "h1", "h2", "h3", "h4", "ul", "ol", "li", "table", "thead", "tbody", "tr", "th",
    "td", "blockquote", "code", "pre", "em", "strong", "a", "hr", "br",
}  # fmt: skip

_FENCED_JSON = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\r?\n(.*?)\r?\n?[ \t]*```", re.DOTALL)


class ReportFormatError(ValueError):
    """Model output that is not a JSON object, so it cannot be a report."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def report_to_markdown(report: dict) -> str:
    """The report as one Markdown document, in the order a reader expects."""
    if not isinstance(report, dict):
        report = {}
    blocks = [f"# {_line(report.get('title')) or 'Untitled report'}"]

    summary = _text(report.get("executive_summary")).strip()
    if summary:
        blocks += ["## Executive summary", summary]

    for number, section in enumerate(_items(report.get("sections")), start=1):
        if isinstance(section, dict):
            heading = _line(section.get("heading")) or f"Section {number}"
            body = _text(section.get("body")).strip()
            cited = _ids(section.get("citations"))
        else:
            heading, body, cited = f"Section {number}", _text(section).strip(), []
        blocks.append(f"## {heading}")
        if body:
            blocks.append(body)
        if cited:
            blocks.append(f"*Sources: {', '.join(cited)}*")

    rows = [_evidence_row(row) for row in _items(report.get("evidence"))]
    rows = [row for row in rows if row]
    if rows:
        blocks += ["## Evidence", "| Claim | Source | Quote |\n| --- | --- | --- |\n" + "\n".join(rows)]

    for heading, key in (("Recommendations", "recommendations"), ("Open questions", "open_questions")):
        entries = [_list_item(item) for item in _items(report.get(key))]
        entries = [entry for entry in entries if entry]
        if entries:
            blocks += [f"## {heading}", "\n".join(f"- {entry}" for entry in entries)]

    notes = [_source_note(note) for note in _items(report.get("source_notes"))]
    notes = [note for note in notes if note]
    if notes:
        blocks += ["## Source notes", "\n".join(f"- {note}" for note in notes)]

    pages = [_web_citation(row) for row in _items(report.get("web_citations"))]
    pages = [page for page in pages if page]
    if pages:
        blocks += ["## Web sources", "\n".join(f"- {page}" for page in pages)]

    return "\n\n".join(blocks) + "\n"


def web_citations(report: dict) -> list[dict]:
    """The report's web citations that name an http(s) URL: {claim, url, title, quote}."""
    rows = []
    for row in _items(report.get("web_citations") if isinstance(report, dict) else None):
        if not isinstance(row, dict):
            continue
        url = _line(row.get("url"))
        if re.match(r"https?://", url, re.IGNORECASE):
            rows.append({key: _text(row.get(key)).strip() for key in ("claim", "title", "quote")} | {"url": url})
    return rows


def _web_citation(row) -> str:
    if not isinstance(row, dict):
        return ""
    url = _line(row.get("url"))
    if not re.match(r"https?://", url, re.IGNORECASE):
        return ""
    title = _line(row.get("title")).replace("[", "(").replace("]", ")") or url
    quote = _line(row.get("quote"))
    href = url.replace(" ", "%20").replace("(", "%28").replace(")", "%29")
    return f"[{title}]({href})" + (f" — “{quote}”" if quote else "")


def render_html(markdown_text: str) -> str:
    """Markdown → HTML that is safe to put in a page, whatever the Markdown contained."""
    # Imported here, not at the top: Markdown costs every process memory; few paths render.
    import markdown

    html = markdown.markdown(_text(markdown_text), extensions=["tables", "fenced_code"])
    return _cleaner().clean(html)


@functools.cache
def _cleaner():
    """One cleaner for the process: building it compiles the whole policy."""
    # Imported here, not at the top: many modules read this one's constants, and only
    # rendering needs nh3 (memory of every process).
    import nh3

    return nh3.Cleaner(
        tags=_ALLOWED_TAGS,
        # These lose their content too, not just the tags: a script's text is not report text.
        clean_content_tags={"script", "style", "iframe", "object", "embed", "noscript", "template"},
        attributes={"a": {"href"}},
        url_schemes={"http", "https", "mailto"},
        # Relative links would point into reportdesk itself; a report has no business doing that.
        url_relative="deny",
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def cited_source_ids(report: dict) -> list[str]:
    """Every source id the report cites, once each, in order of first appearance."""
    if not isinstance(report, dict):
        return []
    found: dict[str, None] = {}

    def inline(value) -> None:
        for marker in CITATION_MARKER.finditer(_text(value)):
            found.update(dict.fromkeys(_SOURCE_ID.findall(marker.group(1))))

    inline(report.get("title"))
    inline(report.get("executive_summary"))
    for section in _items(report.get("sections")):
        if isinstance(section, dict):
            inline(section.get("body"))
            found.update(dict.fromkeys(_ids(section.get("citations"))))
        else:
            inline(section)
    for row in _items(report.get("evidence")):
        if isinstance(row, dict):
            inline(row.get("claim"))
            found.update(dict.fromkeys(_ids(row.get("source_id"))))
    for key in ("recommendations", "open_questions"):
        for item in _items(report.get(key)):
            inline(item)
    return list(found)


def parse_report_json(text: str) -> dict:
    """Model output text → report dict. Accepts the JSON bare or in a ```json fence."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", errors="replace")
    if not isinstance(text, str) or not text.strip():
        raise ReportFormatError("The model returned no report text.")
    candidate = text.strip()
    try:
        data = json.loads(candidate)
    except json.JSONDecodeError as error:
        fenced = _FENCED_JSON.search(candidate)
        if fenced is None:
            raise ReportFormatError(_decode_message(error)) from error
        try:
            data = json.loads(fenced.group(1))
        except json.JSONDecodeError as fenced_error:
            raise ReportFormatError(_decode_message(fenced_error)) from fenced_error
    if not isinstance(data, dict):
        raise ReportFormatError(
            f"The report must be a JSON object, not {_json_type(data)}."
        )
    return data


def _decode_message(error: json.JSONDecodeError) -> str:
    return f"The report is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})."


def _json_type(value) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


def _text(value) -> str:
    """Any value as display text: strings as they are, lists joined, other JSON as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return " ".join(part for part in (_text(item) for item in value) if part)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return str(value)


def _line(value) -> str:
    """Text that must stay on one line (a heading, a list item's lead)."""
    return " ".join(_text(value).split())


def _items(value) -> list:
    """A value that should be a list: a lone item becomes a list of one, nothing becomes []."""
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _ids(value) -> list[str]:
    ids: dict[str, None] = {}
    for item in _items(value):
        ids.update(dict.fromkeys(_SOURCE_ID.findall(_text(item))))
    return list(ids)


def _list_item(value) -> str:
    # Continuation lines indented so a multi-line item stays one list item.
    return "\n  ".join(line.strip() for line in _text(value).strip().splitlines() if line.strip())


def _cell(value) -> str:
    text = _text(value).strip().replace("\\", "\\\\").replace("|", "\\|")
    return "<br>".join(line.strip() for line in text.splitlines() if line.strip())


def _evidence_row(row) -> str:
    if isinstance(row, dict):
        claim, source, quote = row.get("claim"), row.get("source_id"), row.get("quote")
    else:
        claim, source, quote = row, "", ""
    cells = [_cell(claim), _cell(source), _cell(quote)]
    if not any(cells):
        return ""
    if cells[2]:
        cells[2] = f"“{cells[2]}”"
    return "| " + " | ".join(cells) + " |"


def _source_note(note) -> str:
    if isinstance(note, dict):
        source, text = _line(note.get("source_id")), _list_item(note.get("note"))
        if source and text:
            return f"**{source}**: {text}"
        return f"**{source}**" if source else text
    return _list_item(note)
