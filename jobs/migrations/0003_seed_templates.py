from django.db import migrations


def seed(apps, schema_editor):
    from jobs.templates_seed import TEMPLATES

    ReportTemplate = apps.get_model("jobs", "ReportTemplate")
    for spec in TEMPLATES:
        ReportTemplate.objects.get_or_create(slug=spec["slug"], defaults={k: v for k, v in spec.items() if k != "slug"})


class Migration(migrations.Migration):
    dependencies = [("jobs", "0002_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
