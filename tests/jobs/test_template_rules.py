"""A template is checked against what the provider accepts when it is saved: its model's
reasoning efforts, strict structured output's rules for a custom schema, and a cost cap only
on a priced model. The seeded templates reason by default."""

import copy
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from jobs.models import ReportTemplate
from jobs.report_schema import QUESTIONS_SCHEMA, REPORT_SCHEMA
from jobs.template_rules import strict_schema_problems
from tests.factories import ReportTemplateFactory, UserFactory
from tests.fakes.responses_api import strict_schema_problem

OPEN_OBJECT = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
OPTIONAL_PROPERTY = {"type": "object", "additionalProperties": False, "properties": {"a": {"type": "string"}, "b": {"type": "string"}}, "required": ["a"]}
NESTED_OPEN = {
    "type": "object", "additionalProperties": False, "required": ["rows"],
    "properties": {"rows": {"type": "array", "items": {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]}}},
}
ARRAY_ROOT = {"type": "array", "items": {"type": "string"}}
NULLABLE_OK = {
    "type": "object", "additionalProperties": False, "required": ["a", "b"],
    "properties": {"a": {"type": "string"}, "b": {"type": ["string", "null"]}},
}


@pytest.mark.parametrize(
    "schema, fine",
    [
        (REPORT_SCHEMA, True), (QUESTIONS_SCHEMA, True), (NULLABLE_OK, True),
        (OPEN_OBJECT, False), (OPTIONAL_PROPERTY, False), (NESTED_OPEN, False), (ARRAY_ROOT, False),
    ],
)
def test_strict_schema_rules_agree_with_the_api(schema, fine):
    ours = strict_schema_problems(schema)
    assert (ours == []) is fine, ours
    # the fake (which answers as the API does) refuses exactly what we refuse
    assert (strict_schema_problem(schema) is None) is fine


def test_unsupported_keywords_and_foreign_refs_are_named():
    schema = copy.deepcopy(NULLABLE_OK)
    schema["properties"]["a"] = {"allOf": [{"type": "string"}]}
    schema["properties"]["b"] = {"$ref": "https://example.com/schema.json"}

    problems = " ".join(strict_schema_problems(schema))

    assert "'allOf' is not supported" in problems and "must point into this schema's $defs" in problems


@pytest.mark.django_db
class TestTemplateSave:
    @pytest.mark.parametrize(
        "model, effort, message",
        [
            ("gpt-4.1", "low", "gpt-4.1 has no reasoning settings"),
            ("gpt-5.2", "minimal", "does not offer 'minimal'; it takes: none, low, medium, high, xhigh"),
            ("gpt-5", "none", "does not offer 'none'"),
            ("gpt-5-pro", "medium", "it takes: high"),
        ],
    )
    def test_an_effort_the_model_does_not_offer_is_refused(self, model, effort, message):
        template = ReportTemplateFactory.build(model=model, reasoning_effort=effort)

        with pytest.raises(ValidationError) as refused:
            template.full_clean()

        assert message in " ".join(refused.value.message_dict["reasoning_effort"])

    @pytest.mark.parametrize("model, effort", [("gpt-5.2", "xhigh"), ("gpt-5.2", "none"), ("gpt-5", "minimal"), ("o3", "high"), ("gpt-4.1", "")])
    def test_an_effort_the_model_offers_is_kept(self, model, effort):
        ReportTemplateFactory.build(model=model, reasoning_effort=effort).full_clean()

    def test_a_custom_schema_that_strict_mode_refuses_is_refused_on_save(self):
        template = ReportTemplateFactory.build(output_schema=OPEN_OBJECT)

        with pytest.raises(ValidationError) as refused:
            template.full_clean()

        assert "'additionalProperties' must be false" in refused.value.message_dict["output_schema"][0]

    def test_a_cost_cap_needs_a_priced_model(self):
        with pytest.raises(ValidationError) as refused:
            ReportTemplateFactory.build(model="gpt-unlisted", cost_cap_usd=Decimal("1")).full_clean()
        assert "no price" in refused.value.message_dict["cost_cap_usd"][0]

    def test_the_admin_form_shows_the_schema_error(self, client):
        client.force_login(UserFactory(is_superuser=True, is_staff=True))
        template = ReportTemplate.objects.get(slug="market-scan")

        page = client.get(f"/admin/jobs/reporttemplate/{template.pk}/change/")
        form = page.context["adminform"].form
        data = {name: form[name].value() for name in form.fields}
        data = {k: ("" if v is None else v) for k, v in data.items()}
        data.update(output_schema='{"type": "object", "properties": {"a": {"type": "string"}}}', required_sections='["Overview"]',
                    web_search_domains="[]")
        response = client.post(f"/admin/jobs/reporttemplate/{template.pk}/change/", {k: v for k, v in data.items() if v is not False})

        assert response.status_code == 200
        assert "Strict structured output would refuse this schema" in response.content.decode()
        template.refresh_from_db()
        assert template.output_schema == {}

    def test_the_seeded_templates_reason_by_default_and_are_valid(self):
        efforts = dict(ReportTemplate.objects.values_list("slug", "reasoning_effort"))

        assert efforts["due-diligence"] == "high" and efforts["market-scan"] == "medium"
        assert all(efforts[slug] for slug in ("market-scan", "vendor-comparison", "technical-brief", "due-diligence", "customer-memo"))
        for template in ReportTemplate.objects.all():
            template.full_clean()
