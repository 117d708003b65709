"""Give the seeded templates a reasoning effort: the default model does not reason unless asked.

Only templates still without an effort, on a model that takes these values, are changed; an
operator's own choice stays."""

from django.db import migrations

SEEDED_EFFORTS = {
    "market-scan": "medium",
    "vendor-comparison": "medium",
    "technical-brief": "low",
    "due-diligence": "high",
    "customer-memo": "low",
}
# Models that accept low, medium and high.
MODELS = ("gpt-5.5", "gpt-5.4", "gpt-5.2", "gpt-5.1", "gpt-5", "gpt-5-mini", "gpt-5-nano")


def seed_efforts(apps, schema_editor):
    ReportTemplate = apps.get_model("jobs", "ReportTemplate")
    for slug, effort in SEEDED_EFFORTS.items():
        ReportTemplate.objects.filter(slug=slug, reasoning_effort="", model__in=MODELS).update(reasoning_effort=effort)


class Migration(migrations.Migration):
    dependencies = [("jobs", "0014_reasoning_effort_choices")]
    operations = [migrations.RunPython(seed_efforts, migrations.RunPython.noop)]
