"""The manifest's foreign key on its entries loses the index Django gives every foreign key:
manifest_entry_position (manifest, position) serves every lookup by it. Only the index is
dropped; the constraint stays, so the table is not rewritten or revalidated. On PostgreSQL the
index goes CONCURRENTLY, so that the drop does not hold up the table's writes."""

import django.db.models.deletion
from django.db import migrations, models

INDEX = "sources_manifestentry_manifest_id_1a55fab4"


def _concurrently(schema_editor) -> str:
    return " CONCURRENTLY" if schema_editor.connection.vendor == "postgresql" else ""


def drop(apps, schema_editor):
    schema_editor.execute(f'DROP INDEX{_concurrently(schema_editor)} IF EXISTS "{INDEX}"')


def restore(apps, schema_editor):
    # Dropped first: a CREATE INDEX CONCURRENTLY that failed leaves an invalid index behind,
    # which IF NOT EXISTS would then keep.
    schema_editor.execute(f'DROP INDEX{_concurrently(schema_editor)} IF EXISTS "{INDEX}"')
    schema_editor.execute(f'CREATE INDEX{_concurrently(schema_editor)} "{INDEX}" ON "sources_manifestentry" ("manifest_id")')


class Migration(migrations.Migration):
    atomic = False  # CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("sources", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(drop, restore)],
            state_operations=[
                migrations.AlterField(
                    model_name="manifestentry",
                    name="manifest",
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="entries", to="sources.sourcemanifest"),
                ),
            ],
        ),
    ]
