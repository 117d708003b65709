"""Mails: a text and an HTML part from templates/notifications/email/<name>.txt and .html.

The HTML part is rendered with Django's autoescaping on, so the topic, reviewers' comments,
failure messages and the report title (model output) reach it escaped; the text part is
plain text and no mail client renders markup in it. Subjects are single-line and bounded
(a newline in a header is refused by Django, and a topic may contain one).
"""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string


def subject_line(text: str, limit: int = 150) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def mail_render(*, template: str, context: dict) -> tuple[str, str]:
    context = {"site_url": settings.SITE_URL, **context}
    text = render_to_string(f"notifications/email/{template}.txt", context)
    html = render_to_string(f"notifications/email/{template}.html", context)
    return text, html


def mail_deliver(*, to: str, subject: str, text: str, html: str) -> None:
    """Send one mail through the configured backend (EMAIL_URL). Raises what the backend raises."""
    message = EmailMultiAlternatives(subject=subject_line(subject), body=text, to=[to])
    message.attach_alternative(html, "text/html")
    message.send()
