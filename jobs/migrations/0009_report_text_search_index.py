"""A full-text index of the reports' Markdown on PostgreSQL (jobs.search); nothing elsewhere.

The expression is the one Django writes for SearchVector("content", config="english"), so
the planner uses the index for jobs.search's queries.
"""

from django.db import migrations

INDEX = "jobs_artifact_report_fts"
CREATE = (
    f"CREATE INDEX IF NOT EXISTS {INDEX} ON jobs_artifact "
    "USING gin (to_tsvector('english'::regconfig, COALESCE(content, ''))) WHERE kind = 'report_md'"
)
DROP = f"DROP INDEX IF EXISTS {INDEX}"


def _on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("jobs", "0008_failure_retryable")]

    operations = [migrations.RunPython(_on_postgresql(CREATE), _on_postgresql(DROP))]
