"""One error hierarchy for the whole product.

Services raise these; the API's exception handler and the admin's message_user each map
them once. `code` is the machine-readable error code of the REST contract.
"""


class ApplicationError(Exception):
    code = "error"
    http_status = 400

    def __init__(self, message: str, *, fields: dict | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class ValidationFailed(ApplicationError):
    code = "invalid"
    http_status = 400


class PermissionDenied(ApplicationError):
    code = "permission_denied"
    http_status = 403


class NotFound(ApplicationError):
    code = "not_found"
    http_status = 404


class InvalidTransition(ApplicationError):
    """The action is not allowed in the job's current state."""

    code = "invalid_transition"
    http_status = 409


class NotRetryable(InvalidTransition):
    code = "not_retryable"


class ClaimConflict(ApplicationError):
    code = "claim_conflict"
    http_status = 409


class BudgetExceeded(ApplicationError):
    """The report cannot fit in a budget (a template's cost cap, a workspace's monthly budget);
    `fields["budget"]` names which."""

    code = "budget_exceeded"
    http_status = 400
