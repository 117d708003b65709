"""The REST API for integrations (DESIGN.md, "REST API (integration contract)").

Views are thin: they scope, parse, call one service or selector, and serialise. Every error,
ours or Django REST framework's, leaves as `{"error": {"code", "message", "fields"}}`
(reportdesk.api.exceptions).
"""
