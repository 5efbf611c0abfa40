"""Domain errors of resource requests, and the messages of their problems.

Messages are English source strings with ``{placeholders}``, translated for display
(``translations/ko-resources.toml``); a problem's values are numbers and model ids, never
another consortium's data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from vault.errors import DomainError

if TYPE_CHECKING:
    from vault.resources.service import Problem

#: A field left empty (or, in the API, a key left out).
MISSING = {
    "gpu_model": "Choose a GPU model.",
    "gpu_count": "Enter the number of GPUs.",
    "data_budget_krw": "Enter the data purchase budget in won.",
    "talent_headcount": "Enter the talent support headcount.",
}
#: A value outside the programme's range: ``{minimum}`` and ``{maximum}`` are inclusive.
OUT_OF_RANGE = {
    "gpu_count": "The GPU count must be from {minimum} to {maximum}.",
    "data_budget_krw": "The data purchase budget must be from {minimum} to {maximum} won.",
    "talent_headcount": "The talent support headcount must be from {minimum} to {maximum}.",
}
#: A GPU model the programme's form does not offer.
UNKNOWN_MODEL = "The programme offers no GPU model {model}; choose one of {allowed}."
#: More GPUs of one model than the form allows for that model.
OVER_MODEL_LIMIT = "At most {maximum} GPUs of the model {model} can be requested."
#: A form field or JSON value that is not a whole number.
NOT_A_NUMBER = "Enter a whole number (digits only, like 512)."
#: A JSON value of the wrong type for the GPU model.
NOT_A_TEXT = "Send the GPU model id as text, like \"b200\"."
#: A JSON key the request does not have.
UNKNOWN_FIELD = ("There is no such field; a resource request has gpu_model, gpu_count, "
                 "data_budget_krw and talent_headcount.")
#: A JSON body that is not an object.
NOT_AN_OBJECT = ("Send a JSON object with gpu_model, gpu_count, data_budget_krw and "
                 "talent_headcount.")

#: Every problem template above, for the translation check.
TEMPLATES = (*MISSING.values(), *OUT_OF_RANGE.values(), UNKNOWN_MODEL, OVER_MODEL_LIMIT,
             NOT_A_NUMBER, NOT_A_TEXT, UNKNOWN_FIELD, NOT_AN_OBJECT)


class ResourceError(DomainError):
    """Base class: ``status`` and ``code`` say how the web layer answers."""


class InvalidResourceRequest(ResourceError):
    """The values are incomplete, malformed or outside the programme's ranges.

    ``problems`` lists every problem found; the message is the first one's.
    """

    status = 400
    code = "invalid_resource_request"

    def __init__(self, problems: Sequence[Problem]) -> None:
        if not problems:
            raise ValueError("an invalid resource request has at least one problem")
        super().__init__(problems[0].template, **problems[0].values)
        self.problems = tuple(problems)


class NoResourceForm(ResourceError):
    """The programme's definition has no resource request form."""

    status = 404
    code = "no_resource_form"
