"""Calls described once, run by a synchronous or an asynchronous client.

Every SDK method is a *plan*: a generator that yields ``Call`` values (method, path,
query, body, how to read the answer) and receives each call's result. ``executed``
wraps a plan into *steps* — ``Send`` one HTTP request, ``Sleep`` before a retry — and
owns everything that is not I/O: retries with back-off, turning failure answers
into typed errors, parsing answers into the API's pydantic models. The sync and
the async runner (``mail_proxy.client.runners``) only perform the two kinds of step,
so both clients share every line of behaviour (the "sans-I/O" design).

Retries. A connection that could not be opened (refused, connect timeout) never
carried the request, so every call is tried again. A connection lost after the
request went out (reset, dropped, read timeout) or a 502/503/504 answer may follow a
request the server applied: only calls marked ``repeatable`` are tried again —
those whose repetition leaves the same state *and* the same answer (reads,
create-or-replace by id, partial updates, add-messages by message id,
suspend/activate, run-now). Creating a tenant (its API key is shown once), rotating
keys, deletions and cleanups are not: a repeat would lose the first answer. Delays
grow as ``backoff * 2**attempt`` up to ``MAX_DELAY`` (RFC 9110 §9.2.2 on idempotent
methods; the growth keeps a restarting proxy from being hammered).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from mail_proxy.client.errors import MailProxyError, RequestTimeout, ServerUnavailable, error_for

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

MAX_DELAY = 8.0
UNAVAILABLE = frozenset({502, 503, 504})
#: Failures before the request was written: nothing reached the server.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
#: Failures after the request may have been written and applied.
MAYBE_SENT = (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError, httpx.TimeoutException)

Query = Mapping[str, str | int | float | bool | None]


@dataclass(frozen=True)
class Call(Generic[T]):
    """One HTTP request of the API and how to read its answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: Query = field(default_factory=dict)
    json: Any = None
    repeatable: bool = False

    def request_args(self) -> dict[str, Any]:
        """Arguments of ``httpx.Client.request`` (and of the async one): unset query
        parameters are left out, so the server applies its own defaults."""
        params = {k: _query_value(v) for k, v in self.params.items() if v is not None}
        args: dict[str, Any] = {"method": self.method, "url": self.path, "params": params}
        if self.json is not None:
            args["json"] = self.json
        return args


def _query_value(value: str | int | float | bool) -> str | int | float:
    """Booleans as the API reads them (``true``/``false``, not Python's ``True``)."""
    return ("true" if value else "false") if isinstance(value, bool) else value


def model(kind: type[M]) -> Callable[[httpx.Response], M]:
    """A parser reading the answer as ``kind``; a body that does not fit (another
    server, another version) is a ``MailProxyError`` rather than a pydantic error."""

    def parse(response: httpx.Response) -> M:
        try:
            return kind.model_validate_json(response.content)
        except PydanticValidationError as exc:
            raise MailProxyError(
                f"Unexpected answer to {response.request.method} {response.request.url.path}: "
                f"not a {kind.__name__} ({exc.error_count()} problems)",
                response.status_code,
            ) from None

    return parse


def text(response: httpx.Response) -> str:
    """A parser keeping the answer as text (Prometheus metrics, CSV exports)."""
    return response.text


@dataclass(frozen=True)
class Send:
    """Step: perform ``call``'s request; the runner sends back the response, or the
    ``httpx.TransportError`` it raised."""

    call: Call[Any]


@dataclass(frozen=True)
class Sleep:
    """Step: wait ``seconds`` before trying again."""

    seconds: float


Step = Send | Sleep
Outcome = httpx.Response | httpx.TransportError | None
Plan = Generator[Call[Any], Any, T]
"""What an SDK method is: yields calls, receives their results, returns its value."""
Steps = Generator[Step, Outcome, T]


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 3
    backoff: float = 0.5

    def delay(self, attempt: int) -> float:
        return float(min(self.backoff * 2**attempt, MAX_DELAY))


def _retryable(call: Call[Any], outcome: Outcome) -> bool:
    if isinstance(outcome, NOT_SENT):
        return True
    if isinstance(outcome, httpx.Response):
        return call.repeatable and outcome.status_code in UNAVAILABLE
    return call.repeatable and isinstance(outcome, MAYBE_SENT)


def _unavailable(call: Call[Any], error: httpx.TransportError) -> ServerUnavailable:
    where = f"{call.method} {call.path}"
    if isinstance(error, httpx.TimeoutException) and not isinstance(error, NOT_SENT):
        return RequestTimeout(f"{where}: no answer in time ({type(error).__name__})")
    return ServerUnavailable(f"{where}: {type(error).__name__}: {error or 'no connection'}")


def attempts(call: Call[Any], policy: RetryPolicy) -> Steps[httpx.Response]:
    """Send ``call`` until it is answered or the retries are spent."""
    attempt = 0
    while True:
        outcome = yield Send(call)
        if attempt < policy.retries and _retryable(call, outcome):
            yield Sleep(policy.delay(attempt))
            attempt += 1
            continue
        if isinstance(outcome, httpx.Response):
            return outcome
        assert isinstance(outcome, httpx.TransportError), "runners answer Send with one of two"
        raise _unavailable(call, outcome) from outcome


def result(call: Call[T], response: httpx.Response) -> T:
    if response.status_code >= 400:
        raise error_for(response)
    return call.parse(response)


def executed(plan: Plan[T], policy: RetryPolicy) -> Steps[T]:
    """The steps that carry out ``plan``; errors of a call are thrown into the plan,
    so a method made of several calls may handle one (``stats`` does)."""
    try:
        call = next(plan)
        while True:
            response = yield from attempts(call, policy)
            try:
                value = result(call, response)
            except MailProxyError as exc:
                call = plan.throw(exc)
            else:
                call = plan.send(value)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
