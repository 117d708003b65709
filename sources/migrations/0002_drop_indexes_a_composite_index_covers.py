"""The manifest's foreign key on its entries loses the index Django gives every foreign key:
manifest_entry_position (manifest, position) serves every lookup by it. Only the index is
dropped; the constraint stays, so the table is not rewritten or revalidated."""

import django.db.models.deletion
from django.db import migrations, models

INDEX = "sources_manifestentry_manifest_id_1a55fab4"


class Migration(migrations.Migration):

    dependencies = [
        ("sources", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{INDEX}"',
                    reverse_sql=f'CREATE INDEX "{INDEX}" ON "sources_manifestentry" ("manifest_id")',
                ),
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="manifestentry",
                    name="manifest",
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="entries", to="sources.sourcemanifest"),
                ),
            ],
        ),
    ]
