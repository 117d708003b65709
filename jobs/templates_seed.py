"""The five report templates every installation starts with (loaded by a data migration).

Each names a reasoning effort: the default model (gpt-5.2) does not reason unless asked, and
research reports read better when it does — most where the stakes are highest (due diligence).
"""

COMMON = (
    "You are a careful research analyst writing for a business audience. Work only from the "
    "sources supplied. Prefer specific, dated facts over generalities. Flag uncertainty plainly."
)

TEMPLATES = [
    {
        "slug": "market-scan",
        "reasoning_effort": "medium",
        "name": "Market scan",
        "report_type": "market_scan",
        "description": "Size, segments, players and trends of a market.",
        "instructions": COMMON + " Describe the market: its size and growth, segments, main players, "
        "recent moves and the trends that matter for the audience.",
        "required_sections": ["Market overview", "Key players", "Trends", "Risks"],
        "review_required": True,
        "max_runtime_minutes": 30,
        "useful_window_hours": 72,
        "freshness_days": 365,
    },
    {
        "slug": "vendor-comparison",
        "reasoning_effort": "medium",
        "name": "Vendor comparison",
        "report_type": "vendor_comparison",
        "description": "Side-by-side assessment of vendors against stated criteria.",
        "instructions": COMMON + " Compare the vendors named in the topic on capability, pricing, "
        "maturity, support and risk. Be even-handed; say where the sources are vendor-authored.",
        "required_sections": ["Criteria", "Comparison", "Strengths and weaknesses", "Recommendation"],
        "review_required": True,
        "max_runtime_minutes": 30,
        "useful_window_hours": 72,
        "freshness_days": 365,
    },
    {
        "slug": "technical-brief",
        "reasoning_effort": "low",
        "name": "Technical brief",
        "report_type": "technical_brief",
        "description": "How a technology works, where it fits, and its limits.",
        "instructions": COMMON + " Explain how the technology works, where it fits, its limits and "
        "what adopting it would take.",
        "required_sections": ["Summary", "How it works", "Limitations", "Adoption considerations"],
        "review_required": False,
        "max_runtime_minutes": 20,
        "useful_window_hours": 168,
        "freshness_days": 0,
    },
    {
        "slug": "due-diligence",
        "reasoning_effort": "high",
        "name": "Due diligence",
        "report_type": "due_diligence",
        "description": "Risks, facts and open questions about a company or deal.",
        "instructions": COMMON + " Assess the company or deal: verifiable facts, financial and legal "
        "signals, operational risks, and what remains unverified. Never state legal or financial "
        "conclusions the sources do not support.",
        "required_sections": ["Company overview", "Financial signals", "Legal and regulatory", "Risks", "Open items"],
        "review_required": True,
        "mode": "multi_step",
        "max_runtime_minutes": 45,
        "useful_window_hours": 120,
        "freshness_days": 180,
    },
    {
        "slug": "customer-memo",
        "reasoning_effort": "low",
        "name": "Customer memo",
        "report_type": "customer_memo",
        "description": "A short, customer-safe memo answering a customer's question.",
        "instructions": COMMON + " Write a short memo a customer can read: plain language, no internal "
        "details, no claims beyond the sources.",
        "required_sections": ["Summary", "Details", "Next steps"],
        "review_required": True,
        "max_runtime_minutes": 20,
        "useful_window_hours": 48,
        "freshness_days": 365,
    },
]
