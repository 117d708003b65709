"""Password sign-in throttling in the browser: repeated failures lock the username out from
that address (even with the right password), an operator sees the lockout in the admin and
clears it, and the person signs in."""

import re

import pytest
from playwright.sync_api import expect

from reportdesk.models import Role
from tests.browser.conftest import PASSWORD, screenshot
from tests.factories import WorkspaceFactory, member

pytestmark = pytest.mark.django_db(transaction=True)


def try_password(page, username, password):
    page.goto("/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")


def test_lockout_after_repeated_failures_cleared_by_an_operator(page, browser, live_server, settings):
    settings.AXES_FAILURE_LIMIT = 3
    workspace = WorkspaceFactory(slug="research-ops")
    rita = member(workspace, Role.REQUESTER, username="rita")
    member(workspace, Role.OPERATOR, username="oscar")

    # two wrong passwords: the usual form error
    for _ in range(2):
        try_password(page, "rita", "not-her-password")
        expect(page.locator(".errornote")).to_contain_text("Please enter the correct username and password")

    # the third locks her out, and then even the right password is refused
    try_password(page, "rita", "not-her-password")
    expect(page.locator(".errornote")).to_contain_text("Too many failed sign-ins")
    try_password(page, "rita", PASSWORD)
    expect(page.locator(".errornote")).to_contain_text("Too many failed sign-ins")
    assert "/admin/login/" in page.url
    screenshot(page, "login-locked-out")

    # an operator, signed in from elsewhere in the same office, sees the lockout and clears it
    operator = browser.new_context(base_url=live_server.url).new_page()
    try_password(operator, "oscar", PASSWORD)
    operator.wait_for_url("**/admin/")
    operator.goto("/admin/axes/accessattempt/?locked_out=yes")
    row = operator.locator("#result_list tbody tr", has_text="rita")
    expect(row).to_contain_text("Locked Out")
    screenshot(operator, "login-lockouts-in-admin")
    row.locator("input.action-select").check()
    operator.select_option("select[name=action]", "delete_selected")
    operator.click("button[name=index]")
    operator.click("input[type=submit]")  # "Yes, I'm sure"
    expect(operator.locator(".messagelist")).to_contain_text(re.compile("Successfully deleted 1"))
    operator.context.close()

    # and she signs in
    try_password(page, "rita", PASSWORD)
    page.wait_for_url("**/admin/")
    assert rita.username in page.content() or "Operations console" in page.content()
