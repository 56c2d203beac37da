"""The one table that turns the proxy's exceptions into HTTP status codes."""

from __future__ import annotations

import inspect

import pytest

from mail_proxy import errors
from mail_proxy.api.errors import STATUS_OF, status_of

ERROR_CLASSES = [
    cls
    for _, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, errors.MailProxyError)
]


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.MailProxyError("sealed with another key"), 500),
        (errors.NotFound("no such tenant"), 404),
        (errors.Conflict("exists"), 409),
        (errors.InvalidInput("bad", field="to"), 400),
        (errors.Unauthorized("no token"), 401),
        (errors.WrongTenant(), 401),
        (errors.Forbidden("admin only"), 403),
        (errors.TooLarge("batch"), 413),
        (errors.TargetRefused("loopback"), 400),
        (errors.StorageUnavailable("locked"), 503),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_each_error_has_its_status(error: errors.MailProxyError, status: int) -> None:
    assert status_of(error) == status


def test_an_unlisted_subclass_answers_like_its_nearest_base() -> None:
    class Gone(errors.NotFound):
        pass

    assert Gone not in STATUS_OF
    assert status_of(Gone("deleted")) == 404


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_exceptions_know_nothing_of_http(cls: type[errors.MailProxyError]) -> None:
    """Status codes live in the API's table only, so a CLI or an SDK maps its own way."""
    assert not any(name.startswith("status") for name in vars(cls))
