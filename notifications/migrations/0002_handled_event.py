"""Receipts of handled job events, the outbox the minute sweep reads.

The events already written were handed over before receipts existed: the recent ones (the
sweep's horizon, a day) get a receipt here, or the first sweep would hand them all out again.
"""

import datetime as dt

import django.db.models.deletion
from django.db import migrations, models
from django.utils import timezone


def receipts_for_recent_events(apps, schema_editor):
    JobEvent = apps.get_model("jobs", "JobEvent")
    HandledEvent = apps.get_model("notifications", "HandledEvent")
    recent = JobEvent.objects.filter(at__gte=timezone.now() - dt.timedelta(days=1)).values_list("pk", flat=True)
    HandledEvent.objects.bulk_create((HandledEvent(event_id=pk) for pk in recent.iterator()), batch_size=1000, ignore_conflicts=True)


class Migration(migrations.Migration):

    dependencies = [
        ('jobs', '0023_attempt_template_settings'),
        ('notifications', '0001_notifications_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='HandledEvent',
            fields=[
                ('event', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='+', serialize=False, to='jobs.jobevent')),
                ('at', models.DateTimeField(auto_now_add=True, db_index=True)),
            ],
        ),
        migrations.RunPython(receipts_for_recent_events, migrations.RunPython.noop),
    ]
