"""What the commands print: a rich table or key/value panel for people, JSON for scripts.

Every read command takes ``--json`` (the ``json_option`` decorator) and hands its
rows to ``show_rows`` or ``show_record``; the choice of format is made here once.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

F = TypeVar("F", bound=Callable[..., Any])

console = Console(highlight=False)
# Spinners and progress bars: on stderr, so that stdout stays the data a script reads.
err_console = Console(stderr=True, highlight=False)

json_option: Callable[[F], F] = click.option(
    "--json", "as_json", is_flag=True, help="Print JSON (for scripts) instead of a table."
)
force_option: Callable[[F], F] = click.option(
    "--force", is_flag=True, help="Do not ask for confirmation (needed without a terminal)."
)


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def show_rows(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], as_json: bool, title: str = ""
) -> None:
    """A table of ``columns`` (JSON: every field of every row)."""
    if as_json:
        print_json(list(rows))
        return
    if not rows:
        console.print(f"[dim]no {title or 'rows'}[/dim]")
        return
    table = Table(title=title or None, show_lines=False)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(cell(row.get(column)) for column in columns))
    console.print(table)


def show_record(record: dict[str, Any], as_json: bool, title: str = "") -> None:
    """One object as two columns, field and value (JSON: the object)."""
    if as_json:
        print_json(record)
        return
    table = Table(title=title or None, show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in record.items():
        table.add_row(key, cell(value))
    console.print(table)


def write_csv(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> None:
    writer = csv.DictWriter(sys.stdout, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({column: cell(row.get(column)) for column in columns})


def done(text: str) -> None:
    """A one-line confirmation of a change, on stderr so stdout stays the data."""
    click.echo(text, err=True)


def confirm(question: str, force: bool) -> None:
    """Ask before destroying something; without a terminal, refuse rather than guess."""
    if force:
        return
    if not sys.stdin.isatty():
        raise click.UsageError(f"{question} Not asked without a terminal: add --force.")
    click.confirm(question, abort=True)


def ask(
    value: Any,
    option: str,
    prompt: str,
    *,
    required: bool = False,
    secret: bool = False,
    default: Any = None,
) -> Any:
    """An option's value, asked for when missing and a person is at the terminal.

    Without a terminal nothing is asked (a script must not hang on a prompt): a
    missing required option is a usage error, an optional one keeps ``default``.
    Secrets are typed without echo.
    """
    if value is not None:
        return value
    if sys.stdin.isatty():
        answer = click.prompt(
            prompt,
            default=default if default is not None else ("" if not required else None),
            hide_input=secret,
            show_default=default is not None,
        )
        return answer if answer != "" else None
    if required:
        raise click.UsageError(f"missing option {option} (prompts need a terminal)")
    return default
