"""The review page's decision form: shape only. What a decision needs (a comment to reject, an
override reason when checks failed, the checklist to approve) is decided by
reviews.services.review_decide, whose errors land back on these fields."""

from django import forms

from .models import CHECKLIST, Decision


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=Decision.choices)
    version = forms.IntegerField(widget=forms.HiddenInput)
    comment = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        label="Comment",
        help_text="Why you reject, or what the next version should change. Sent to the model with a revision.",
    )
    override_reason = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Override reason",
        help_text="Required to approve a draft whose automatic checks failed: say why it may be trusted anyway.",
    )
    checklist = forms.MultipleChoiceField(
        required=False,
        choices=list(CHECKLIST.items()),
        widget=forms.CheckboxSelectMultiple,
        label="Reviewer checklist",
        help_text="Confirm each item to approve.",
    )

    def __init__(self, *args, sections: dict[str, str] | None = None, **kwargs):
        """`sections`: form field name → section heading, for per-section comments."""
        super().__init__(*args, **kwargs)
        self.sections = sections or {}
        for name, heading in self.sections.items():
            self.fields[name] = forms.CharField(
                required=False,
                # The box sits beside its section on the page, outside the <form> element.
                widget=forms.Textarea(attrs={"rows": 2, "form": "decision-form"}),
                label=f"Comment on “{heading}”",
            )

    def section_comments(self) -> dict[str, str]:
        return {heading: self.cleaned_data.get(name, "") for name, heading in self.sections.items()}

    def add_service_errors(self, fields: dict, message: str) -> None:
        """Put a service's ValidationFailed on the fields it names (the rest on the form)."""
        placed = False
        for name, text in fields.items():
            if name in self.fields:
                self.add_error(name, text)
                placed = True
        if not placed:
            self.add_error(None, message)
