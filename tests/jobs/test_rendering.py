"""Reports as readers see them: Markdown structure, HTML that stays inert, citations, parsing."""

import re

import pytest

from jobs.rendering import (
    ReportFormatError,
    cited_source_ids,
    parse_report_json,
    render_html,
    report_to_markdown,
)

REPORT = {
    "title": "Battery recycling",
    "executive_summary": "Recycling grows [S1]. Prices fell [S2, S3].",
    "sections": [
        {"heading": "Background", "body": "Plants opened in 2023 [S1][S4].", "citations": ["S1", "S4"]},
        {"heading": "Costs", "body": "Collection is costly.", "citations": ["S5"]},
    ],
    "evidence": [
        {"claim": "Cobalt | nickel recovered", "source_id": "S1", "quote": "cobalt | nickel\nand lithium"},
        {"claim": "Prices fell", "source_id": "S6", "quote": "Prices fell sharply."},
    ],
    "recommendations": ["Suggestion: read S1 in full."],
    "open_questions": ["What about subsidies? [S7]"],
    "source_notes": [{"source_id": "S1", "note": "Battery paper (url, 2024-03-01): 2 passages used."}],
}

EVENT_HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE)
TAG = re.compile(r"<([a-zA-Z][a-zA-Z0-9]*)([^>]*)>")
ATTRIBUTE_NAME = re.compile(r"([a-zA-Z_:][-a-zA-Z0-9_:.]*)\s*=")
HREF = re.compile(r"""href\s*=\s*["']?([^"'\s>]*)""", re.IGNORECASE)

XSS_PAYLOADS = {
    "script tag": "<script>alert(1)</script>",
    "script in a paragraph": "Hello <script>alert(1)</script> world",
    "img onerror": "<img src=x onerror=alert(1)>",
    "markdown javascript link": "[x](javascript:alert(1))",
    "mixed-case javascript href": '<a href="JaVaScRiPt:alert(1)">x</a>',
    "svg onload": "<svg onload=alert(1)><circle r=1 /></svg>",
    "iframe": '<iframe src="https://evil.example/"></iframe>',
    "data url link": "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "data url image": "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "entity-encoded javascript href": '<a href="&#106;avascript:alert(1)">x</a>',
    "hex entity-encoded javascript href": '<a href="&#x6A;&#x61;vascript:alert(1)">x</a>',
    "tab inside the scheme": '<a href="jav&#x09;ascript:alert(1)">x</a>',
    "entity-encoded markdown link": "[x](&#106;avascript:alert(1))",
    "event handler on an allowed tag": '<p onclick="alert(1)">x</p>',
    "style tag": "<style>body{background:url(javascript:alert(1))}</style>",
    "style attribute": '<p style="background:url(javascript:alert(1))">x</p>',
    "object": '<object data="javascript:alert(1)"></object>',
    "form button": '<form action="javascript:alert(1)"><button>go</button></form>',
    "unclosed tag": "<img src=x onerror=alert(1)",
    "in a table cell": "| a |\n|---|\n| <img src=x onerror=alert(1)> |",
}


def assert_inert(html: str) -> None:
    assert "<script" not in html.lower()
    assert "<style" not in html.lower()
    assert "alert(1)</script" not in html.lower()
    assert not EVENT_HANDLER.search(html)
    for href in HREF.findall(html):
        assert href.lower().startswith(("http:", "https:", "mailto:")), href
    for tag, attributes in TAG.findall(html):
        names = ATTRIBUTE_NAME.findall(attributes)
        assert set(names) <= ({"href", "rel"} if tag == "a" else set()), (tag, names)


def test_markdown_has_the_report_structure():
    markdown_text = report_to_markdown(REPORT)

    assert markdown_text.startswith("# Battery recycling\n")
    headings = re.findall(r"^## (.+)$", markdown_text, re.MULTILINE)
    assert headings == [
        "Executive summary",
        "Background",
        "Costs",
        "Evidence",
        "Recommendations",
        "Open questions",
        "Source notes",
    ]
    assert "| Claim | Source | Quote |" in markdown_text
    assert "- Suggestion: read S1 in full." in markdown_text
    assert "- **S1**: Battery paper" in markdown_text


def test_evidence_cells_escape_pipes_and_newlines():
    html = render_html(report_to_markdown(REPORT))

    rows = re.findall(r"<tr>(.*?)</tr>", html, re.DOTALL)
    assert len(rows) == 3  # header + two evidence rows
    assert all(len(re.findall(r"<t[hd]>", row)) == 3 for row in rows)
    assert "Cobalt | nickel recovered" in rows[1]
    assert "cobalt | nickel<br>and lithium" in rows[1]


def test_rendered_report_has_headings_and_paragraphs():
    html = render_html(report_to_markdown(REPORT))

    assert "<h1>Battery recycling</h1>" in html
    assert "<h2>Executive summary</h2>" in html
    assert "<p>Recycling grows [S1]. Prices fell [S2, S3].</p>" in html
    assert "<li>Suggestion: read S1 in full.</li>" in html


@pytest.mark.parametrize("payload", list(XSS_PAYLOADS.values()), ids=list(XSS_PAYLOADS))
def test_untrusted_html_comes_out_inert(payload):
    assert_inert(render_html(payload))


@pytest.mark.parametrize("payload", list(XSS_PAYLOADS.values()), ids=list(XSS_PAYLOADS))
def test_untrusted_html_in_any_report_field_comes_out_inert(payload):
    report = {
        "title": payload,
        "executive_summary": payload,
        "sections": [{"heading": payload, "body": payload, "citations": [payload]}],
        "evidence": [{"claim": payload, "source_id": payload, "quote": payload}],
        "recommendations": [payload],
        "open_questions": [payload],
        "source_notes": [{"source_id": payload, "note": payload}],
    }

    assert_inert(render_html(report_to_markdown(report)))


def test_script_content_is_dropped_not_shown_as_text():
    html = render_html("Before <script>steal()</script> after <style>p{color:red}</style>")

    assert "steal" not in html
    assert "color" not in html
    assert "Before" in html and "after" in html


def test_normal_links_keep_their_href_and_get_rel():
    html = render_html("[docs](https://example.com/a?b=1) and [mail](mailto:team@example.com)")

    assert '<a href="https://example.com/a?b=1" rel="noopener noreferrer nofollow">docs</a>' in html
    assert 'href="mailto:team@example.com"' in html


def test_relative_links_lose_their_href():
    html = render_html("[admin](/admin/jobs/) [frag](#top)")

    assert "href" not in html
    assert "admin" in html


def test_code_blocks_show_html_as_text():
    html = render_html("```\n<script>alert(1)</script>\n```")

    assert "<pre><code>&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.parametrize(
    "report",
    [
        None,
        [],
        "just a string",
        {},
        {"title": None, "sections": None, "evidence": None},
        {"title": 42, "executive_summary": ["a", "b"], "sections": "one string"},
        {"sections": [1, None, "text", {"heading": ["a", "b"], "body": {"x": 1}, "citations": "S1"}]},
        {"evidence": "S1 says so"},
        {"evidence": [None, 3, {"claim": None}, {"quote": ["a|b"]}]},
        {"recommendations": "one", "open_questions": {"q": 1}, "source_notes": ["note", {"x": 1}]},
        {"source_notes": [{"source_id": None, "note": None}]},
    ],
    ids=lambda value: repr(value)[:40],
)
def test_bad_shapes_render_without_raising(report):
    markdown_text = report_to_markdown(report)

    assert markdown_text.startswith("# ")
    assert render_html(markdown_text)


def test_bad_shapes_still_render_what_is_there():
    markdown_text = report_to_markdown(
        {
            "title": "T",
            "sections": "A lone body",
            "evidence": [{"claim": "C", "source_id": "S1"}],
            "recommendations": "Do this",
        }
    )

    assert "## Section 1\n\nA lone body" in markdown_text
    assert "| C | S1 |  |" in markdown_text
    assert "- Do this" in markdown_text


def test_multi_line_list_items_stay_one_item():
    html = render_html(report_to_markdown({"title": "T", "recommendations": ["first line\nsecond line"]}))

    assert re.search(r"<li>first line\s+second line</li>", html)


def test_cited_source_ids_in_order_of_first_appearance():
    assert cited_source_ids(REPORT) == ["S1", "S2", "S3", "S4", "S5", "S6", "S7"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("One [S1].", ["S1"]),
        ("Two [S1, S3].", ["S1", "S3"]),
        ("Semicolons [S2; S1].", ["S2", "S1"]),
        ("Adjacent [S1][S2] and spaced [ S4 ].", ["S1", "S2", "S4"]),
        ("Repeated [S2] [S1] [S2].", ["S2", "S1"]),
        ("Not markers: S1, [1], [see S2], [S], [s3], (S4).", []),
    ],
)
def test_cited_source_ids_reads_inline_markers(body, expected):
    assert cited_source_ids({"sections": [{"body": body}]}) == expected


def test_cited_source_ids_tolerates_bad_shapes():
    report = {"sections": ["Text [S2]", {"citations": "S3"}], "evidence": [None, {"source_id": "S1"}]}

    assert cited_source_ids(report) == ["S2", "S3", "S1"]
    assert cited_source_ids(None) == []


@pytest.mark.parametrize(
    "text",
    [
        '{"title": "T"}',
        '  \n{"title": "T"}\n',
        '```json\n{"title": "T"}\n```',
        '```\n{"title": "T"}\n```',
        'Here is the report:\n```json\n{"title": "T"}\n```\nDone.',
    ],
)
def test_parse_report_json_accepts_bare_and_fenced_json(text):
    assert parse_report_json(text) == {"title": "T"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no report text"),
        ("not json at all", "not valid JSON"),
        ('{"title": "T",', "not valid JSON"),
        ("[1, 2]", "not an array"),
        ('"a string"', "not a string"),
        ("null", "not null"),
        ("```json\n[1]\n```", "not an array"),
        ("```json\n{oops}\n```", "not valid JSON"),
    ],
)
def test_parse_report_json_rejects_what_is_not_a_report(text, message):
    with pytest.raises(ReportFormatError, match=message) as raised:
        parse_report_json(text)

    assert isinstance(raised.value, ValueError)
    assert message in raised.value.message
