from django.apps import AppConfig


class ReportdeskConfig(AppConfig):
    name = "reportdesk"
    verbose_name = "Workspaces"
