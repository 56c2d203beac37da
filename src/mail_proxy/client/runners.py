"""The two runners of plans (blocking and asyncio) and the ``op`` descriptor.

A runner performs the steps of ``calls.executed`` with an httpx client: ``Send``
becomes one request, ``Sleep`` a wait. ``op`` turns a plan method of a ``Resource``
into a method that runs it: on a resource of the sync client it returns the value,
on one of the async client a coroutine — the overloads tell type checkers which,
so ``client.messages.list()`` is ``MessageListResponse`` in one client and
``Coroutine[..., MessageListResponse]`` in the other from one definition.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, Generic, ParamSpec, Self, TypeVar, overload

import httpx

from mail_proxy.client.calls import Outcome, Plan, RetryPolicy, Send, Step, executed

P = ParamSpec("P")
T = TypeVar("T")


class SyncRunner:
    def __init__(self, http: httpx.Client, policy: RetryPolicy) -> None:
        self.http = http
        self.policy = policy

    def run(self, plan: Plan[T]) -> T:
        steps = executed(plan, self.policy)
        outcome: Outcome = None
        try:
            while True:
                outcome = self._perform(steps.send(outcome))
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    def _perform(self, step: Step) -> Outcome:
        if not isinstance(step, Send):
            time.sleep(step.seconds)
            return None
        try:
            return self.http.request(**step.call.request_args())
        except httpx.TransportError as exc:
            return exc


class AsyncRunner:
    def __init__(self, http: httpx.AsyncClient, policy: RetryPolicy) -> None:
        self.http = http
        self.policy = policy

    async def run(self, plan: Plan[T]) -> T:
        steps = executed(plan, self.policy)
        outcome: Outcome = None
        try:
            while True:
                outcome = await self._perform(steps.send(outcome))
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    async def _perform(self, step: Step) -> Outcome:
        if not isinstance(step, Send):
            await asyncio.sleep(step.seconds)
            return None
        try:
            return await self.http.request(**step.call.request_args())
        except httpx.TransportError as exc:
            return exc


R = TypeVar("R", bound=SyncRunner | AsyncRunner)


class Resource(Generic[R]):
    """A group of API methods, bound to the runner of the client it belongs to."""

    def __init__(self, runner: R) -> None:
        self._runner: R = runner


class op(Generic[P, T]):
    """Decorator: a plan method becomes a method that runs it (see the module doc)."""

    def __init__(self, plan: Callable[Concatenate[Any, P], Plan[T]]) -> None:
        self.plan = plan
        self.__doc__ = plan.__doc__

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...

    @overload
    def __get__(self, obj: Resource[SyncRunner], owner: type[Any]) -> Callable[P, T]: ...

    @overload
    def __get__(
        self, obj: Resource[AsyncRunner], owner: type[Any]
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...

    def __get__(self, obj: Resource[Any] | None, owner: type[Any]) -> Any:
        if obj is None:
            return self
        plan, run = self.plan, obj._runner.run

        def method(*args: P.args, **kwargs: P.kwargs) -> Any:
            return run(plan(obj, *args, **kwargs))

        method.__name__ = plan.__name__
        method.__doc__ = plan.__doc__
        return method
