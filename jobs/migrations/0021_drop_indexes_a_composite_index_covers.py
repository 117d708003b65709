"""Three foreign keys lose the index Django gives every foreign key: a composite index that
starts with the same column already serves every lookup by it, and each insert (an event for
every state change) paid for both. Only the indexes are dropped; the constraints stay as they
are, so no table is rewritten or revalidated."""

import django.db.models.deletion
from django.db import migrations, models

DROPPED = [
    # (index, table, column); the index that covers it
    ("jobs_jobattempt_job_id_05797094", "jobs_jobattempt", "job_id"),  # attempt_unique_number
    ("jobs_jobevent_job_id_79067df7", "jobs_jobevent", "job_id"),  # event_job_at_idx
    ("jobs_reportjob_workspace_id_4ddb8c94", "jobs_reportjob", "workspace_id"),  # job_workspace_recent_idx
]


def _concurrently(schema_editor) -> str:
    return " CONCURRENTLY" if schema_editor.connection.vendor == "postgresql" else ""


def drop(apps, schema_editor):
    for index, _table, _column in DROPPED:
        schema_editor.execute(f'DROP INDEX{_concurrently(schema_editor)} IF EXISTS "{index}"')


def restore(apps, schema_editor):
    # Dropped first: a CREATE INDEX CONCURRENTLY that failed leaves an invalid index behind,
    # which IF NOT EXISTS would then keep.
    for index, table, column in DROPPED:
        schema_editor.execute(f'DROP INDEX{_concurrently(schema_editor)} IF EXISTS "{index}"')
        schema_editor.execute(f'CREATE INDEX{_concurrently(schema_editor)} "{index}" ON "{table}" ("{column}")')


class Migration(migrations.Migration):
    atomic = False  # CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("jobs", "0020_providercall_watched"),
        ("reportdesk", "0002_workspace_monthly_budget"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(drop, restore)],
            state_operations=[
                migrations.AlterField(
                    model_name="jobattempt",
                    name="job",
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="attempts", to="jobs.reportjob"),
                ),
                migrations.AlterField(
                    model_name="jobevent",
                    name="job",
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="events", to="jobs.reportjob"),
                ),
                migrations.AlterField(
                    model_name="reportjob",
                    name="workspace",
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name="jobs", to="reportdesk.workspace"),
                ),
            ],
        ),
    ]
