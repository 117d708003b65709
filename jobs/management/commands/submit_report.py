"""manage.py submit_report: submit a report from the terminal and, with --wait, follow it.

    manage.py submit_report --workspace research-ops --template market-scan \\
        --topic "Battery recycling in Europe" --source notes.pdf --source https://example.com/a \\
        --user requester --wait
"""

import sys
import time
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from jobs import policy, services
from jobs.worker.lease import dispatcher_is_alive
from jobs.models import ACTIVE_STATUSES, ReportJob, ReportTemplate
from reportdesk.errors import ApplicationError
from reportdesk.models import Workspace
from sources.services import SourceSpec, source_create_upload


def _elapsed(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}:{seconds:02d}"


class Command(BaseCommand):
    help = "Submit a research report; --wait follows it until it leaves running."

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True, help="Workspace slug.")
        parser.add_argument("--template", required=True, help="Template slug (see the admin or GET /api/v1/templates/).")
        parser.add_argument("--topic", required=True)
        parser.add_argument("--audience", default="")
        parser.add_argument(
            "--source", action="append", default=[], metavar="PATH_OR_URL",
            help="A file (text, Markdown, HTML, PDF) or an http(s) URL. Repeat for more.",
        )
        parser.add_argument("--user", required=True, help="Username of the requester (a requester or operator of the workspace).")
        parser.add_argument("--wait", action="store_true", help="Follow the job until it leaves running.")
        parser.add_argument("--interval", type=float, default=2.0, help="Seconds between progress updates with --wait.")

    def handle(self, *args, workspace, template, topic, audience, source, user, wait, interval, **options):
        ws = Workspace.objects.filter(slug=workspace).first()
        if ws is None:
            raise CommandError(f"No workspace '{workspace}'. Known: {', '.join(Workspace.objects.values_list('slug', flat=True)) or 'none'}.")
        tpl = ReportTemplate.objects.filter(slug=template, is_active=True).first()
        if tpl is None:
            known = ", ".join(ReportTemplate.objects.filter(is_active=True).values_list("slug", flat=True))
            raise CommandError(f"No active template '{template}'. Known: {known}.")
        requester = get_user_model().objects.filter(username=user).first()
        if requester is None:
            raise CommandError(f"No user '{user}'. Add one with: manage.py add_member {workspace} {user} --role requester")
        try:
            # Refused before anything is stored: no uploaded file is left behind.
            policy.check_submit(requester, ws)
            with transaction.atomic():  # a refused submit keeps none of its uploads
                specs = [self._source(ws, requester, value) for value in source]
                job = services.job_submit(
                    workspace=ws, requested_by=requester, template=tpl, topic=topic, audience=audience, sources=specs
                )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"Submitted {job.public_id}: {job.input_summary}")
        if not wait:
            self.stdout.write(f"Follow it with: manage.py submit_report ... --wait, or GET /api/v1/jobs/{job.public_id}/")
            return
        self._follow(job, interval=interval)

    def _source(self, workspace, requester, value: str) -> SourceSpec:
        if value.startswith(("http://", "https://")):
            return SourceSpec(url=value)
        path = Path(value)
        if not path.is_file():
            raise CommandError(f"Source '{value}' is neither a readable file nor an http(s) URL.")
        item = source_create_upload(workspace=workspace, created_by=requester, name=path.name, data=path.read_bytes())
        return SourceSpec(item_id=item.pk)

    def _follow(self, job: ReportJob, *, interval: float) -> None:
        started = time.monotonic()
        if not dispatcher_is_alive():
            self.stdout.write(self.style.WARNING("No worker seems to be running; start one with: manage.py qcluster"))
        tty = sys.stdout.isatty()
        last_line = ""
        while True:
            job.refresh_from_db()
            checked = "not checked yet"
            if job.last_checked_at:
                checked = f"last checked {int((timezone.now() - job.last_checked_at).total_seconds())}s ago"
            line = f"[{job.get_status_display()}] {checked} · elapsed {_elapsed(time.monotonic() - started)}"
            if tty:
                self.stdout.write(f"\r{line:<70}", ending="")
            elif line.split("·")[0] != last_line.split("·")[0]:
                self.stdout.write(line)
            last_line = line
            if job.status not in ACTIVE_STATUSES:
                break
            time.sleep(interval)
        if tty:
            self.stdout.write("")
        self._summary(job)

    def _summary(self, job: ReportJob) -> None:
        if job.status in ("needs_review", "completed"):
            self.stdout.write(self.style.SUCCESS(f"{job.public_id} is {job.status} (version {job.version})."))
            self.stdout.write(f"  Read it in the admin: /admin/jobs/reportjob/{job.public_id}/change/")
            self.stdout.write(f"  Or over the API:      GET /api/v1/jobs/{job.public_id}/report/?format=md")
            return
        message = f"{job.public_id} ended {job.status}"
        if job.failure_class:
            message += f" ({job.failure_class}): {job.failure_message}"
        raise CommandError(message)

