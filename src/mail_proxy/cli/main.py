"""The ``mail-proxy`` command: ``serve``, the instance commands, and the commands
that manage a proxy through the SDK (``mail-proxy NAME ...``).

Only ``serve`` loads the server (``mail_proxy.cli.serve``, imported when it runs):
the commands that manage a proxy are clients of its API and start quickly.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from mail_proxy import __version__
from mail_proxy.cli.admin import instance_group
from mail_proxy.cli.groups import NamedGroup
from mail_proxy.cli.home import Context, all_instances
from mail_proxy.cli.instances import COMMANDS
from mail_proxy.cli.scope import FAILURES


@click.group(
    cls=NamedGroup,
    named=instance_group,
    current=lambda _: Context.load().instance,
    names=lambda: [found.name for found in all_instances()],
    errors=FAILURES,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="mail-proxy")
def main() -> None:
    """mail-proxy: a durable e-mail queue with SMTP delivery and delivery reports.

    \b
    Examples:
      mail-proxy start myserver --background
      mail-proxy myserver tenants add --id acme --name "ACME"
      mail-proxy myserver acme messages list
    """


for _command in COMMANDS:
    main.add_command(_command)


@main.command()
@click.option("--host", help="Interface to listen on (GMP_HOST, default 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (GMP_PORT, default 8000).")
@click.option("--db", "db_path", help="SQLite path or postgresql:// URL (GMP_DB_PATH).")
@click.option(
    "--dev-sink",
    is_flag=True,
    default=None,
    help="Also run an accept-all development SMTP sink with a demo tenant and account.",
)
@click.option(
    "--instance-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of the secret key and admin token (GMP_INSTANCE_DIR).",
)
@click.option(
    "--pid-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the process id here while serving; removed on exit.",
)
def serve(
    host: str | None,
    port: int | None,
    db_path: str | None,
    dev_sink: bool | None,
    instance_dir: Path | None,
    pid_file: Path | None,
) -> None:
    """Run the proxy in the foreground until SIGTERM or Ctrl-C.

    For containers and process managers; on a workstation `mail-proxy start NAME`
    runs this with an instance folder.

    \b
    Example:
      GMP_API_TOKEN=... mail-proxy serve --host 0.0.0.0 --port 8000
    """
    overrides: dict[str, Any] = {
        key: value
        for key, value in {
            "host": host,
            "port": port,
            "db_path": db_path,
            "dev_sink": dev_sink,
            "instance_dir": instance_dir,
        }.items()
        if value is not None
    }
    from mail_proxy.cli.serve import run  # the server: loaded only to serve

    run(overrides, pid_file)


if __name__ == "__main__":
    sys.exit(main())
