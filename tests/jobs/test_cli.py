"""manage.py submit_report, as a person in a terminal uses it."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from jobs.models import ReportJob
from reportdesk.models import Role
from tests.factories import ReportTemplateFactory, WorkspaceFactory, member


@pytest.fixture
def setup(db, tmp_path):
    workspace = WorkspaceFactory(slug="research-ops")
    member(workspace, Role.REQUESTER, username="rita")
    ReportTemplateFactory(slug="scan")
    notes = tmp_path / "notes.md"
    notes.write_text("# Recycling notes\n\nEuropean battery recycling capacity grew 40% in 2025.\n")
    return notes


def run(*args):
    out = StringIO()
    call_command("submit_report", *args, stdout=out)
    return out.getvalue()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--workspace", "nope"], "No workspace 'nope'. Known: research-ops"),
        (["--template", "nope"], "No active template 'nope'"),
        (["--user", "ghost"], "No user 'ghost'. Add one with: manage.py add_member"),
        (["--source", "/no/such/file.pdf"], "neither a readable file nor an http(s) URL"),
        (["--source", "ftp://example.com/x"], "neither a readable file nor an http(s) URL"),
        (["--source", "http://169.254.169.254/latest/meta-data"], "may not fetch"),
        (["--topic", "   "], "Give the report a topic"),
    ],
)
def test_bad_arguments_get_a_clear_message_and_nothing_is_submitted(setup, args, message):
    base = {"--workspace": "research-ops", "--template": "scan", "--topic": "Recycling", "--user": "rita", "--source": str(setup)}
    overrides = dict(zip(args[::2], args[1::2]))
    argv = [x for key, value in {**base, **overrides}.items() for x in (key, value)]
    with pytest.raises(CommandError) as exc:
        run(*argv)
    assert message in str(exc.value)
    assert not ReportJob.objects.exists()


def test_submit_prints_the_job_id(setup):
    output = run("--workspace", "research-ops", "--template", "scan", "--topic", "Recycling", "--user", "rita", "--source", str(setup))
    job = ReportJob.objects.get()
    assert f"Submitted {job.public_id}" in output
    assert job.source_manifest.entries.get().item.title == "Recycling notes"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_wait_follows_the_job_until_it_leaves_running(tmp_path, worker):
    workspace = WorkspaceFactory(slug="research-ops")
    member(workspace, Role.REQUESTER, username="rita")
    ReportTemplateFactory(slug="scan")
    notes = tmp_path / "notes.md"
    notes.write_text("European battery recycling capacity grew 40% in 2025. Most plants make black mass.\n")
    worker()
    output = run(
        "--workspace", "research-ops", "--template", "scan", "--topic", "Recycling capacity",
        "--user", "rita", "--source", str(notes), "--wait", "--interval", "0.2",
    )
    job = ReportJob.objects.get()
    assert job.status == "needs_review"
    assert "[Generating report]" in output  # the live progress line while running
    assert f"{job.public_id} is needs_review (version 1)" in output
    assert f"/api/v1/jobs/{job.public_id}/report/?format=md" in output
