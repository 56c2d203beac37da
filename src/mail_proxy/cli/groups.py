"""The command tree: fixed commands beside a name chosen by the user.

``mail-proxy start web`` is a fixed command, ``mail-proxy web tenants list`` starts
with an instance name, ``mail-proxy web acme accounts list`` adds a tenant name.
``NamedGroup`` resolves a word that is not one of its commands as the name taken
by the next level (``named``): that group is invoked under the name, which its
callback reads as ``ctx.info_name``, so usage lines and errors say
``mail-proxy web acme accounts list`` as typed. When the word is a command of a
deeper level, the name is taken from the context that ``mail-proxy use`` saved, so
``mail-proxy accounts list`` works once a tenant is chosen. Shell completion
follows the same resolution and offers the names ``names`` lists.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click


class NamedGroup(click.Group):
    """A click group whose unknown first word is a name for the ``named`` group."""

    def __init__(
        self,
        *args: Any,
        label: str = "",
        named: NamedGroup | None = None,
        current: Callable[[click.Context], str | None] | None = None,
        names: Callable[[], list[str]] | None = None,
        errors: tuple[type[Exception], ...] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.label = label
        self.named = named
        self.current = current
        self.names = names
        self.errors = errors

    def knows(self, word: str) -> bool:
        """Whether ``word`` is a command here or at a deeper level."""
        return word in self.commands or (self.named is not None and self.named.knows(word))

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        word = args[0]
        if self.named is None or word in self.commands or word.startswith("-"):
            return super().resolve_command(ctx, args)
        if not self.named.knows(word):
            return word, self.named, args[1:]
        name = self.current(ctx) if self.current is not None else None
        if name is None:
            label = self.named.label
            raise click.UsageError(
                f"{word!r} needs a {label} first ({ctx.command_path} {label} {word} ...), "
                "or choose one with: mail-proxy use",
                ctx,
            )
        return name, self.named, args

    def shell_complete(
        self, ctx: click.Context, incomplete: str
    ) -> list[click.shell_completion.CompletionItem]:
        found = super().shell_complete(ctx, incomplete)
        names = self.names() if self.names is not None else []
        return found + [
            click.shell_completion.CompletionItem(name)
            for name in names
            if name.startswith(incomplete)
        ]

    def invoke(self, ctx: click.Context) -> Any:
        """Expected failures (``errors``) become one line and exit status 1."""
        try:
            return super().invoke(ctx)
        except self.errors as exc:
            raise click.ClickException(str(exc) or type(exc).__name__) from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_commands(ctx, formatter)
        if self.named is not None:
            label = self.named.label
            with formatter.section(f"{label} commands"):
                summary = (self.named.help or "").split("\n")[0]
                formatter.write_dl([(f"{label} COMMAND ...", summary)])
