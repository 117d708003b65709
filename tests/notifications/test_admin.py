"""The notifications admin: each person's own choices; endpoints, the delivery log and the
mail log for the operators of their workspaces only, at a fixed query cost."""

from __future__ import annotations

import pytest

from notifications.models import EndpointDelivery, NotificationPreference, WebhookEndpoint
from notifications.signing import secret_new
from reportdesk.models import Role
from tests.factories import ReportJobFactory, member

pytestmark = pytest.mark.django_db


def endpoint_in(workspace, url="https://hooks.example.com/in") -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(workspace=workspace, url=url, events=["*"], secret=secret_new())


def test_each_person_sets_their_own_choices(client, requester, reviewer):
    client.force_login(reviewer)

    page = client.get("/admin/notifications/notificationpreference/", follow=True)
    mine = NotificationPreference.objects.get(user=reviewer)
    assert page.redirect_chain[-1][0] == f"/admin/notifications/notificationpreference/{mine.pk}/change/"
    response = client.post(f"/admin/notifications/notificationpreference/{mine.pk}/change/",
                           {"draft_ready": "digest", "report_updates": "on"})
    assert response.status_code == 302
    mine.refresh_from_db()
    assert (mine.draft_ready, mine.report_updates, mine.operator_alerts) == ("digest", True, False)

    theirs = NotificationPreference.objects.create(user=requester)
    assert client.post(f"/admin/notifications/notificationpreference/{theirs.pk}/change/", {"draft_ready": "off"}).status_code == 302
    theirs.refresh_from_db()
    assert theirs.draft_ready == "immediate"  # not found among the reviewer's own, nothing changed


def test_endpoints_are_for_the_operators_of_their_workspace(client, ws, other_ws, requester, operator):
    mine, theirs = endpoint_in(ws, "https://hooks.example.com/acme"), endpoint_in(other_ws, "https://hooks.example.com/globex")

    client.force_login(requester)
    assert client.get("/admin/notifications/webhookendpoint/").status_code == 403

    client.force_login(operator)
    listing = client.get("/admin/notifications/webhookendpoint/").content.decode()
    assert mine.url in listing and theirs.url not in listing
    assert client.get(f"/admin/notifications/webhookendpoint/{theirs.pk}/change/").status_code == 302  # "doesn't exist"
    page = client.get(f"/admin/notifications/webhookendpoint/{mine.pk}/change/").content.decode()
    assert mine.secret not in page


def test_registering_an_internal_address_is_a_form_error(client, settings, ws, operator):
    settings.SOURCE_ALLOWED_INTERNAL_HOSTS = []
    client.force_login(operator)

    response = client.post("/admin/notifications/webhookendpoint/add/", {
        "workspace": ws.pk, "url": "http://169.254.169.254/latest/meta-data", "events": ["*"], "is_active": "on",
    })

    assert response.status_code == 200
    assert "private network address" in response.content.decode()
    assert WebhookEndpoint.objects.count() == 0


def test_registering_shows_the_secret_once(client, ws, operator):
    client.force_login(operator)

    response = client.post("/admin/notifications/webhookendpoint/add/", {
        "workspace": ws.pk, "url": "https://hooks.example.com/new", "events": ["job.failed"], "is_active": "on",
    })

    endpoint = WebhookEndpoint.objects.get()
    assert response.status_code == 200 and endpoint.secret in response.content.decode()
    assert endpoint.events == ["job.failed"] and endpoint.created_by == operator
    assert endpoint.secret not in client.get(f"/admin/notifications/webhookendpoint/{endpoint.pk}/change/").content.decode()
    # on the record once, by the service (the admin's own logging is off for endpoints)
    from django.contrib.admin.models import LogEntry

    assert LogEntry.objects.filter(object_id=str(endpoint.pk)).count() == 1
    client.post(f"/admin/notifications/webhookendpoint/{endpoint.pk}/delete/", {"post": "yes"})
    assert not WebhookEndpoint.objects.exists()
    assert list(LogEntry.objects.filter(object_id=str(endpoint.pk)).values_list("action_flag", flat=True).order_by("id")) == [1, 3]


@pytest.mark.parametrize("rows", [1, 30])
def test_the_delivery_log_costs_the_same_queries_for_1_and_30_rows(client, ws, other_ws, requester, operator, rows, django_assert_num_queries):
    endpoint = endpoint_in(ws)
    member(other_ws, Role.OPERATOR, "oscar")
    for n in range(rows):
        job = ReportJobFactory(workspace=ws, requested_by=requester)
        EndpointDelivery.objects.create(endpoint=endpoint, job=job, event_type="job.failed", msg_id=f"msg_{n}", payload="{}", status="failed")
    client.force_login(operator)

    # session, user, memberships, count, permissions (user, group) for the sidebar, the page
    with django_assert_num_queries(8):
        response = client.get("/admin/notifications/endpointdelivery/")
    assert response.content.decode().count('class="action-select"') == rows


def test_enabling_a_disabled_endpoint_in_the_admin_clears_its_failures(client, ws, operator):
    from django.utils import timezone

    endpoint = endpoint_in(ws)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(is_active=False, consecutive_failures=15, disabled_at=timezone.now(), disabled_reason="15 failures")
    client.force_login(operator)

    response = client.post(f"/admin/notifications/webhookendpoint/{endpoint.pk}/change/", {
        "url": endpoint.url, "events": ["*"], "description": "", "is_active": "on",
        "deliveries-TOTAL_FORMS": "0", "deliveries-INITIAL_FORMS": "0",
    })

    assert response.status_code == 302, response.content.decode()[:2000]
    endpoint.refresh_from_db()
    assert (endpoint.is_active, endpoint.consecutive_failures, endpoint.disabled_at, endpoint.disabled_reason) == (True, 0, None, "")


def test_an_endpoint_page_lists_its_own_newest_deliveries(client, ws, other_ws, operator):
    quiet = WebhookEndpoint.objects.create(workspace=ws, url="https://quiet.example.com/in", events=["*"], secret=secret_new())
    busy = WebhookEndpoint.objects.create(workspace=other_ws, url="https://busy.example.com/in", events=["*"], secret=secret_new())
    for n in range(12):
        EndpointDelivery.objects.create(endpoint=quiet, event_type="job.completed", msg_id=f"msg_quiet_{n}", payload="{}")
    for n in range(10):  # another workspace's endpoint gets ten newer deliveries
        EndpointDelivery.objects.create(endpoint=busy, event_type="job.created", msg_id=f"msg_busy_{n}", payload="{}")
    client.force_login(operator)

    page = client.get(f"/admin/notifications/webhookendpoint/{quiet.pk}/change/")

    assert page.status_code == 200
    [inline] = page.context["inline_admin_formsets"]
    assert [form.original.msg_id for form in inline] == [f"msg_quiet_{n}" for n in range(11, 1, -1)]


def test_what_was_sent_is_pruned_once_settled_and_old(settings, ws, requester):
    from django.utils import timezone

    from notifications import tasks
    from notifications.models import DeliveryAttempt, Notice

    settings.NOTIFICATION_LOG_DAYS = 90
    endpoint = endpoint_in(ws)
    job = ReportJobFactory(workspace=ws)
    old = timezone.now() - timezone.timedelta(days=91)
    for n, status in enumerate(["succeeded", "failed", "pending", "succeeded"]):
        delivery = EndpointDelivery.objects.create(endpoint=endpoint, job=job, event_type="job.completed", msg_id=f"msg_{n}", payload="{}", status=status)
        DeliveryAttempt.objects.create(delivery=delivery, number=1, trigger="initial", at=timezone.now(), status_code=200)
    for n, status in enumerate(["sent", "failed", "sending", "sent", "sending"]):
        Notice.objects.create(channel="email", kind="draft_ready", job=job, recipient="rita@example.com", subject="s", status=status, dedupe_key=f"k{n}")
    # the first three of each are old; the last is recent
    EndpointDelivery.objects.exclude(msg_id="msg_3").update(created_at=old)
    Notice.objects.exclude(dedupe_key__in=["k3", "k4"]).update(created_at=old)

    # two deliveries with their tries; three notices (one "sending" for 91 days: its task was killed)
    assert tasks.log_prune() == 2 + 2 + 3

    assert sorted(EndpointDelivery.objects.values_list("msg_id", flat=True)) == ["msg_2", "msg_3"]  # still pending; recent
    assert sorted(Notice.objects.values_list("dedupe_key", flat=True)) == ["k3", "k4"]
    assert DeliveryAttempt.objects.count() == 2
    settings.NOTIFICATION_LOG_DAYS = 0
    EndpointDelivery.objects.update(created_at=old, status="succeeded")
    assert tasks.log_prune() == 0  # 0 keeps everything
