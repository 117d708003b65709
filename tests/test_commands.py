"""Onboarding and demo commands: add_member and seed_demo, run the way an operator runs them."""

from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command

from jobs.models import ReportJob
from reportdesk.models import Membership, Workspace

pytestmark = pytest.mark.django_db


def run(*args, **kwargs):
    out = StringIO()
    call_command(*args, stdout=out, **kwargs)
    return out.getvalue()


def test_add_member_creates_what_is_missing_and_is_safe_to_run_twice():
    first = run("add_member", "research-ops", "rita", role="requester", password="s3cret-pass")
    assert "workspace research-ops created; user rita created; requester membership created" in first
    user = get_user_model().objects.get(username="rita")
    assert user.is_staff and authenticate(username="rita", password="s3cret-pass") == user
    assert list(user.groups.values_list("name", flat=True)) == ["requester"]
    assert user.has_perm("jobs.submit_reportjob") and not user.has_perm("jobs.expire_reportjob")

    second = run("add_member", "research-ops", "rita", role="requester", password="s3cret-pass")
    assert second.strip() == "workspace research-ops exists; user rita exists; requester membership exists."
    assert Workspace.objects.count() == 1 and Membership.objects.count() == 1


def test_add_member_changes_a_role_and_keeps_groups_in_step():
    run("add_member", "research-ops", "sam", role="requester")
    run("add_member", "labs", "sam", role="reviewer")
    out = run("add_member", "research-ops", "sam", role="operator")
    assert "updated: role → operator" in out
    user = get_user_model().objects.get(username="sam")
    assert set(user.groups.values_list("name", flat=True)) == {"operator", "reviewer"}
    assert not user.has_usable_password()  # no --password: nobody can sign in as sam yet


@pytest.mark.parametrize("slug", ["Research Ops", "research_ops!"])
def test_add_member_refuses_a_bad_slug(slug):
    with pytest.raises(CommandError) as exc:
        run("add_member", slug, "x", role="requester")
    assert "not a valid slug" in str(exc.value)
    assert not Workspace.objects.exists()


def test_add_member_refuses_an_unknown_role():
    with pytest.raises(CommandError):
        run("add_member", "research-ops", "x", role="admin")


def test_seed_demo_loads_people_sources_and_one_sample_job_and_prints_the_logins():
    out = run("seed_demo")
    for name in ("operator", "reviewer", "requester", "admin"):
        assert name in out
    assert "reportdesk-dev" in out
    job = ReportJob.objects.get()
    assert job.status == "queued" and job.source_manifest.entries.count() == 3
    assert job.template.slug == "market-scan"
    run("seed_demo")  # again: nothing duplicated
    assert ReportJob.objects.count() == 1
    assert Membership.objects.filter(workspace__slug="research-ops").count() == 3
