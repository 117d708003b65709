"""Admin for workspaces, memberships and report templates: scoped to the person's
workspaces, and memberships written through reportdesk.services so groups stay in step."""

import pytest
from django.utils import timezone
from django.contrib.auth.models import Permission

from jobs.models import ReportTemplate
from reportdesk.models import Membership, Role
from tests.admin.builders import job_in
from tests.factories import ReportTemplateFactory, UserFactory, member

pytestmark = pytest.mark.django_db


def grant(user, *codenames):
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return UserFactory._meta.model.objects.get(pk=user.pk)  # fresh permission cache


def test_a_membership_added_in_the_admin_gives_the_role_s_group_and_removing_it_takes_it_away(as_user, superuser, workspace):
    newcomer = UserFactory(username="nina", is_staff=False)
    client = as_user(superuser)

    client.post("/admin/reportdesk/membership/add/", {"workspace": workspace.pk, "user": newcomer.pk, "role": "operator"})
    membership = Membership.objects.get(user=newcomer)

    assert list(newcomer.groups.values_list("name", flat=True)) == ["operator"]
    newcomer.refresh_from_db()
    assert newcomer.is_staff

    client.post(f"/admin/reportdesk/membership/{membership.pk}/change/", {"role": "reviewer"})
    assert list(newcomer.groups.values_list("name", flat=True)) == ["reviewer"]

    client.post(f"/admin/reportdesk/membership/{membership.pk}/delete/", {"post": "yes"})
    assert not Membership.objects.filter(user=newcomer).exists()
    assert not newcomer.groups.exists()


def test_removing_one_membership_keeps_the_groups_of_the_others(as_user, superuser, workspace, other_workspace):
    person = member(workspace, Role.OPERATOR, username="dual")
    member(other_workspace, Role.REVIEWER, username="dual")
    client = as_user(superuser)
    membership = Membership.objects.get(user=person, workspace=workspace)

    client.post("/admin/reportdesk/membership/", {"action": "delete_selected", "_selected_action": [membership.pk], "post": "yes"})

    assert list(person.groups.values_list("name", flat=True)) == ["reviewer"]


def test_staff_see_only_their_workspaces_and_memberships(as_user, workspace, other_workspace):
    staff = member(workspace, Role.OPERATOR, username="scoped")
    member(other_workspace, Role.OPERATOR, username="stranger")
    staff = grant(staff, "view_workspace", "view_membership")
    client = as_user(staff)

    workspaces = client.get("/admin/reportdesk/workspace/").content.decode()
    memberships = client.get("/admin/reportdesk/membership/").content.decode()

    assert "Research Ops" in workspaces and "Secret Lab" not in workspaces
    assert "scoped" in memberships and "stranger" not in memberships and "Secret Lab" not in memberships
    assert client.get(f"/admin/reportdesk/workspace/{other_workspace.pk}/change/").status_code == 302


def test_a_scoped_staff_member_may_only_add_members_to_their_own_workspaces(as_user, workspace, other_workspace):
    staff = grant(member(workspace, Role.OPERATOR, username="scoped"), "add_membership", "view_membership")
    client = as_user(staff)

    form = client.get("/admin/reportdesk/membership/add/").content.decode()
    response = client.post("/admin/reportdesk/membership/add/", {"workspace": other_workspace.pk, "user": staff.pk, "role": "operator"})

    assert "Research Ops" in form and "Secret Lab" not in form
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not Membership.objects.filter(workspace=other_workspace).exists()


def test_templates_keep_their_slug_and_are_retired_rather_than_deleted(as_user, superuser, workspace):
    template = ReportTemplateFactory(slug="market-scan-eu", name="Market scan EU")
    job_in("completed", workspace=workspace, template=template)
    client = as_user(superuser)

    page = client.get(f"/admin/jobs/reporttemplate/{template.pk}/change/").content.decode()

    assert 'name="slug"' not in page and "market-scan-eu" in page
    assert "A report under way keeps the template as it was when its attempt began" in page
    assert client.get(f"/admin/jobs/reporttemplate/{template.pk}/delete/").status_code == 403
    assert client.get("/admin/jobs/reporttemplate/add/").status_code == 200
    assert ReportTemplate.objects.filter(slug="market-scan-eu").exists()


def test_operators_can_read_templates_but_not_change_them(as_user, operator):
    template = ReportTemplateFactory(slug="memo")
    client = as_user(operator)

    assert client.get("/admin/jobs/reporttemplate/").status_code == 200
    client.post(f"/admin/jobs/reporttemplate/{template.pk}/change/", {"name": "Hijacked"})
    assert ReportTemplate.objects.get(pk=template.pk).name != "Hijacked"


@pytest.mark.parametrize("who", ["requester", "reviewer", "operator"])
def test_the_source_list_names_no_other_workspace(request, as_user, workspace, other_workspace, who):
    from tests.factories import SourceItemFactory

    SourceItemFactory(workspace=workspace, title="Our capacity survey")
    SourceItemFactory(workspace=other_workspace, title="Their plans")

    page = as_user(request.getfixturevalue(who)).get("/admin/sources/sourceitem/").content.decode()

    assert "Our capacity survey" in page and "Research Ops" in page
    assert "Their plans" not in page and "Secret Lab" not in page  # in the rows, nor in the filter


@pytest.mark.parametrize("path", [
    "/admin/jobs/reportjob/{id}/change/?version=²",
    "/admin/jobs/reportjob/{id}/change/?version=" + "9" * 5000,
    "/admin/jobs/reportjob/{id}/download/md/?version=²",
    "/admin/jobs/reportjob/?workspace=²",
    "/admin/jobs/reportjob/?workspace=99999999999999999999999",
    "/admin/sources/sourceitem/?workspace=²",
    "/admin/notifications/webhookendpoint/?workspace=²",
])
def test_numbers_no_column_holds_in_a_query_string_are_not_a_500(as_user, operator, workspace, path):
    from tests.admin.builders import report_json, store_report

    job = job_in("needs_review", workspace=workspace)
    store_report(job, report_json())
    client = as_user(operator)
    client.raise_request_exception = False

    assert client.get(path.format(id=job.public_id)).status_code in (200, 302)


def test_a_source_a_report_was_written_from_is_read_only(as_user, superuser, workspace):
    from sources.models import SourceItem
    from tests.factories import SourceItemFactory, SourceManifestFactory

    used = SourceItemFactory(workspace=workspace, title="Capacity survey", text="Capacity grew 40% in 2025.")
    unused = SourceItemFactory(workspace=workspace, title="Draft note", text="Capacity grew.")
    manifest = SourceManifestFactory(workspace=workspace, items=[used])
    manifest.frozen_at = timezone.now()
    manifest.save()
    client = as_user(superuser)
    changed = {"title": "Changed", "published_at": "", "text": "Capacity fell."}

    client.post(f"/admin/sources/sourceitem/{used.pk}/change/", changed)
    client.post(f"/admin/sources/sourceitem/{unused.pk}/change/", changed)

    used.refresh_from_db()
    assert (used.title, used.text) == ("Capacity survey", "Capacity grew 40% in 2025.")
    assert SourceItem.objects.get(pk=unused.pk).text == "Capacity fell."  # not yet evidence: still correctable
    assert 'name="text"' not in client.get(f"/admin/sources/sourceitem/{used.pk}/change/").content.decode()
