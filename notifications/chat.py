"""Messages to a Slack-compatible incoming webhook: `{"text": ...}` in Slack's mrkdwn.

Slack treats `<`, `>` and `&` as control characters (`<url|label>` is a link), so every bit
of text from people or the model is escaped before it goes in; links are built here only.
"""

from __future__ import annotations

import json


def chat_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def chat_link(url: str, label: str) -> str:
    return f"<{chat_escape(url)}|{chat_escape(label).replace('|', '¦')}>"


def chat_body(*, headline: str, topic: str, link: str, link_label: str, detail: str = "") -> bytes:
    lines = [f"*{chat_escape(headline)}*", chat_escape(topic)]
    if detail:
        lines.append(chat_escape(detail))
    lines.append(chat_link(link, link_label))
    return json.dumps({"text": "\n".join(lines)}).encode()
