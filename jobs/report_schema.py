"""The structured report: the strict JSON schema the model must answer with.

Strict structured output needs every property listed in `required` and
`additionalProperties: false` on every object, so optional facts are empty strings or lists.
"""

REPORT_SCHEMA_NAME = "research_report"

_STRING = {"type": "string"}

REPORT_SCHEMA: dict = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        "title",
        "executive_summary",
        "sections",
        "evidence",
        "recommendations",
        "open_questions",
        "source_notes",
        "web_citations",
    ],
    "properties": {
        "title": _STRING,
        "executive_summary": _STRING,
        "sections": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["heading", "body", "citations"],
                "properties": {
                    "heading": _STRING,
                    "body": {
                        "type": "string",
                        "description": "Markdown. Cite sources inline as [S1], [S2].",
                    },
                    "citations": {"type": "array", "items": _STRING},
                },
            },
        },
        "evidence": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["claim", "source_id", "quote"],
                "properties": {
                    "claim": _STRING,
                    "source_id": {"type": "string", "description": "S1…Sn"},
                    "quote": {"type": "string", "description": "Verbatim from the source."},
                },
            },
        },
        "recommendations": {"type": "array", "items": _STRING},
        "open_questions": {"type": "array", "items": _STRING},
        "source_notes": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["source_id", "note"],
                "properties": {"source_id": _STRING, "note": _STRING},
            },
        },
        # Pages the web search tool returned that the report relies on (empty without it).
        "web_citations": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["claim", "url", "title", "quote"],
                "properties": {
                    "claim": _STRING,
                    "url": {"type": "string", "description": "The page's URL exactly as the web search returned it."},
                    "title": _STRING,
                    "quote": {"type": "string", "description": "Verbatim from the page."},
                },
            },
        },
    },
}

CITATION_RULES = (
    "Use only the sources provided, identified as S1…Sn (and, when web search is on, the pages it returns). Cite every factual claim inline "
    "with its source id in square brackets, e.g. [S2]. Every evidence row must quote its "
    "source verbatim (copy the words exactly) and name the source id. Do not invent sources, "
    "URLs or quotes. Keep facts and recommendations apart: recommendations go in their own "
    "list. Put anything the sources cannot answer under open questions."
)

WEB_CITATION_RULES = (
    "You may also use pages the web search tool returns. Cite such a page inline as a Markdown "
    "link to its URL, and give it a web_citations row: the claim, the page's URL exactly as the "
    "search returned it, its title, and a quote copied verbatim from the page. Never cite a URL "
    "the search did not return; leave web_citations empty when you used no web page."
)


# Multi-step research: the plan step answers with the questions to research.
QUESTIONS_SCHEMA_NAME = "research_plan"
MAX_RESEARCH_QUESTIONS = 3
QUESTIONS_SCHEMA: dict = {
    "type": "object",
    "additionalProperties": False,
    "required": ["questions"],
    "properties": {"questions": {"type": "array", "items": _STRING}},
}

# The function tool the research steps may call to search the job's own sources.
SEARCH_SOURCES_TOOL: dict = {
    "type": "function",
    "name": "search_sources",
    "description": "Search the job's sources (S1…Sn) for passages relevant to a query. "
    "Returns up to five passages, each with its source id.",
    "parameters": {
        "type": "object",
        "additionalProperties": False,
        "required": ["query"],
        "properties": {"query": {"type": "string", "description": "What to look for."}},
    },
    "strict": True,
}
