"""What the REST API accepts: pydantic models of its path and query parameters and request bodies.

Every model refuses fields it does not know; every string must be storable (no NUL, no lone surrogate);
integers in a query or path are read by gateway.inputs.parse_int only.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from gateway.contacts import normalize_email
from gateway.inputs import INT64_MAX, INT64_MIN, check_text, field_name_problem, parse_int
from gateway.model import ThreadStatus

MAX_TEXT = 4096
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTE_TEXT = 1000
OBJECT_ID_PATTERN = "^[0-9a-fA-F]{24}$"
VISITOR_TOKEN_PATTERN = "^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$"
_OBJECT_ID = re.compile(OBJECT_ID_PATTERN)
_NON_BLANK = re.compile("\\S")


class Params(BaseModel):
    """A request's path or query parameters: unknown ones are refused."""

    model_config = ConfigDict(extra="forbid")


class Body(BaseModel):
    """A request's JSON body: unknown fields are refused, values are never coerced from one type to another."""

    model_config = ConfigDict(extra="forbid", strict=True)


# --- input types -------------------------------------------------------------------------------


def _from_digits(value: Any) -> Any:
    return parse_int(value) if isinstance(value, str) else value


def _not_blank(value: str) -> str:
    if not _NON_BLANK.search(value):
        raise ValueError("must not be empty or only whitespace")
    return value


def _thread_number(value: Any) -> Any:
    # "#17" is how operators and cards write a thread number; accept it as written.
    if isinstance(value, str):
        return parse_int(value.removeprefix("#"), low=1)
    return value


def _object_id(value: str) -> str:
    if not _OBJECT_ID.match(value):
        raise ValueError("must be 24 hexadecimal digits")
    return value


def _attribute_name(value: str) -> str:
    problem = field_name_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _attribute_value(value: Any) -> str | int | float | bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError("integers are limited to 64 bits")
        return value
    if isinstance(value, float):
        return value  # the body parser already refused NaN and infinities
    if isinstance(value, str):
        if len(value) > MAX_ATTRIBUTE_TEXT:
            raise ValueError(f"texts are limited to {MAX_ATTRIBUTE_TEXT} characters")
        return check_text(value)
    raise ValueError("attribute values are strings, numbers, booleans or null")


def _never_null(schema: dict[str, Any]) -> None:
    # An optional field may be left out, but null is not one of its values: document the one type it has.
    variants = [v for v in schema.pop("anyOf", []) if v != {"type": "null"}]
    if len(variants) == 1:
        schema.update(variants[0])
    elif variants:
        schema["anyOf"] = variants
    schema.pop("default", None)


def optional(description: str | None = None) -> Any:
    """The Field of an optional parameter or body field: it may be left out, but is never null."""
    return Field(None, description=description, json_schema_extra=_never_null)


# Query parameters arrive as text: one parser reads integers, then pydantic checks the bounds given before it.
DIGITS = BeforeValidator(_from_digits)
Text = Annotated[str, AfterValidator(check_text)]
NonBlank = Annotated[Text, AfterValidator(_not_blank), Field(json_schema_extra={"pattern": "\\S"})]
AttributeName = Annotated[
    str,
    AfterValidator(_attribute_name),
    Field(min_length=1, max_length=64, json_schema_extra={"pattern": "^[^.$\\x00][^.\\x00]*$"}),
]
AttributeValue = Annotated[
    str | int | float | bool | None,
    PlainValidator(_attribute_value),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "maxLength": MAX_ATTRIBUTE_TEXT},
                {"type": "integer", "minimum": INT64_MIN, "maximum": INT64_MAX},
                {"type": "number"},
                {"type": "boolean"},
                {"type": "null"},
            ]
        }
    ),
]


# --- path and query parameters -----------------------------------------------------------------


class NoParams(Params):
    """No parameters."""


class ThreadPath(Params):
    number: Annotated[
        int,
        Field(ge=1, le=INT64_MAX, description="The thread's number (a leading '#' is accepted too)."),
        BeforeValidator(_thread_number),
    ]


class ContactPath(Params):
    id: Annotated[
        str,
        AfterValidator(_object_id),
        Field(description="The contact's id.", json_schema_extra={"pattern": OBJECT_ID_PATTERN}),
    ]


class VisitorPath(Params):
    token: Annotated[
        str,
        Field(
            description="The visitor token the widget was given (`GatewayWidget.visitorToken`).",
            max_length=512,
            pattern=VISITOR_TOKEN_PATTERN,
        ),
    ]


class ThreadQuery(Params):
    status: ThreadStatus | None = optional("Only threads in this status.")
    operator: Annotated[int, Field(ge=1, le=INT64_MAX), DIGITS] | None = optional(
        "Only threads assigned to this operator (their Telegram user id)."
    )
    channel: Annotated[Text, Field(max_length=64)] | None = optional(
        "Only threads on this channel (telegram, whatsapp, webwidget)."
    )
    limit: Annotated[int, Field(ge=1, le=200), DIGITS] = Field(50, description="At most this many threads.")
    offset: Annotated[int, Field(ge=0, le=INT64_MAX), DIGITS] = Field(0, description="Skip this many threads first.")


class MessageQuery(Params):
    limit: Annotated[int, Field(ge=1, le=500), DIGITS] = Field(100, description="At most this many messages.")
    offset: Annotated[int, Field(ge=0, le=INT64_MAX), DIGITS] = Field(0, description="Skip this many messages first.")


class ContactQuery(Params):
    phone: Annotated[Text, Field(max_length=40)] | None = optional(
        "A phone number in any format; without a country code it is read in contacts.default_region."
    )
    email: Annotated[Text, Field(max_length=254)] | None = optional("An e-mail address, in any case.")


# --- request bodies ------------------------------------------------------------------------------


class MessageIn(Body):
    """An answer to the customer, sent through the thread's channel."""

    text: Annotated[NonBlank, Field(max_length=MAX_TEXT)]
    author_name: Annotated[NonBlank, Field(max_length=100)] = Field(
        "Support", description="The name the customer sees as the author."
    )


class ContactIn(Body):
    """Customer info from a website or CRM: what is given is set, what is not is left alone."""

    name: Annotated[NonBlank, Field(max_length=200)] | None = optional("The customer's name.")
    email: Annotated[NonBlank, Field(max_length=254)] | None = optional("An e-mail address to add to the card.")
    phone: Annotated[NonBlank, Field(max_length=40)] | None = optional(
        "A phone number to add, in any format; kept as given when it is not a valid number."
    )
    attributes: Annotated[dict[AttributeName, AttributeValue], Field(max_length=MAX_ATTRIBUTES)] | None = optional(
        "Custom attributes to set (strings, numbers, booleans or null); attributes not given are kept."
    )

    @field_validator("name", "email", "phone", "attributes", mode="before")
    @classmethod
    def _given_means_not_null(cls, value: Any) -> Any:
        # Absent means "leave alone"; an explicit null would suggest clearing, which the API does not do.
        if value is None:
            raise ValueError("must not be null (leave the field out instead)")
        return value

    @field_validator("email")
    @classmethod
    def _valid_email(cls, value: str | None) -> str | None:
        if value is not None and normalize_email(value) is None:
            raise ValueError("not a valid e-mail address")
        return value

    @model_validator(mode="after")
    def _something(self) -> ContactIn:
        if not self.model_fields_set:
            raise ValueError(f"give at least one of {', '.join(sorted(type(self).model_fields))}")
        return self
