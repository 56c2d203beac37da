"""Instance commands: list, start, stop, restart, status, delete, remote, use, current."""

from __future__ import annotations

import os
import secrets
import sys
from typing import Any
from urllib.parse import urlsplit

import click
import httpx

from mail_proxy.cli.home import (
    DEFAULT_HOST,
    Context,
    Instance,
    InstanceError,
    State,
    all_instances,
)
from mail_proxy.cli.output import (
    confirm,
    done,
    err_console,
    force_option,
    json_option,
    show_record,
    show_rows,
)
from mail_proxy.cli.process import (
    first_free_port,
    run_foreground,
    serve_command,
    spawn_background,
    stop_process,
    wait_healthy,
)

STOP_TIMEOUT = 30.0
START_TIMEOUT = 60.0


def instance_names(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[click.shell_completion.CompletionItem]:
    """Shell completion of instance names (the folders under GMP_HOME)."""
    return [
        click.shell_completion.CompletionItem(found.name)
        for found in all_instances()
        if found.name.startswith(incomplete)
    ]


name_argument = click.argument("name", shell_complete=instance_names)
kill_option = click.option("--force", is_flag=True, help="SIGKILL instead of a graceful SIGTERM.")


def local(name: str) -> Instance:
    """An existing instance that runs on this machine (not a remote one)."""
    instance = Instance.named(name)
    if instance.remote_url:
        raise InstanceError(f"{name!r} is a remote proxy ({instance.remote_url}): manage it there")
    return instance


def answers(instance: Instance) -> bool:
    """Whether the proxy answers ``/health`` (which needs no token)."""
    try:
        return httpx.get(f"{instance.url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def describe(instance: Instance) -> dict[str, Any]:
    config = instance.config()
    state = instance.state()
    return {
        "name": instance.name,
        "state": state.value,
        "url": instance.url,
        "host": config.get("host"),
        "port": config.get("port"),
        "pid": instance.pid() if state is State.RUNNING else None,
    }


@click.command("list")
@json_option
def list_instances(as_json: bool) -> None:
    """List the instances of this machine (and the remote ones registered here).

    \b
    Example:
      mail-proxy list --json
    """
    rows = [describe(instance) for instance in all_instances()]
    show_rows(rows, ["name", "state", "host", "port", "pid", "url"], as_json, "instances")


def _clear_stale(instance: Instance) -> None:
    if instance.state() is State.STALE:
        done(f"removed a stale pid file (process {instance.pid()} is gone)")
        instance.pid_file.unlink(missing_ok=True)


def launch(
    instance: Instance,
    host: str | None,
    port: int | None,
    background: bool,
    dev_sink: bool | None,
) -> None:
    """Start ``instance`` with the saved host, port and dev sink unless new ones are given."""
    config = instance.config() if instance.exists else {}
    if instance.exists:
        state = instance.state()
        if state is State.RUNNING:
            raise InstanceError(
                f"instance {instance.name!r} is already running (pid {instance.pid()}) "
                f"on {instance.url}"
            )
        _clear_stale(instance)
    host = host or config.get("host") or DEFAULT_HOST
    port = port or config.get("port") or first_free_port(host)
    dev_sink = bool(config.get("dev_sink")) if dev_sink is None else dev_sink
    instance.save_config({**config, "host": host, "port": port, "dev_sink": dev_sink})
    if not instance.token_file.exists():
        # Made here, so serve never prints it: a token is shown only by `token`.
        instance.save_token(secrets.token_urlsafe(32))
    command = serve_command(instance, host, port, dev_sink)
    if not background:
        run_foreground(command)
    child = spawn_background(instance, command)
    with err_console.status(f"starting {instance.name} on {instance.url} ..."):
        wait_healthy(instance, child, START_TIMEOUT)
    done(
        f"instance {instance.name!r} running on {instance.url} (pid {child.pid}); "
        f"log: {instance.log}"
    )


@click.command()
@name_argument
@click.option("--host", help="Interface to listen on (saved; default 127.0.0.1).")
@click.option("--port", type=int, help="Port (saved; default: the first free from 8000).")
@click.option("--background", "-b", is_flag=True, help="Detach; output goes to server.log.")
@click.option(
    "--dev-sink/--no-dev-sink",
    default=None,
    help="Also run the accept-all development SMTP sink (saved).",
)
def start(
    name: str, host: str | None, port: int | None, background: bool, dev_sink: bool | None
) -> None:
    """Start instance NAME, creating it on first start.

    \b
    Examples:
      mail-proxy start myserver --background
      mail-proxy start myserver --port 9000      # foreground, Ctrl-C stops it
    """
    instance = Instance.named(name)
    if instance.exists:
        instance = local(name)
    launch(instance, host, port, background, dev_sink)


def halt(instance: Instance, force: bool) -> None:
    """Stop a running instance, or say that it was not running."""
    state = instance.state()
    if state is not State.RUNNING:
        _clear_stale(instance)
        done(f"instance {instance.name!r} is not running")
        return
    pid = instance.pid()
    assert pid is not None  # RUNNING means the pid file names a live process
    with err_console.status(f"stopping {instance.name} (pid {pid}) ..."):
        stopped = stop_process(pid, force, STOP_TIMEOUT)
    if not stopped:
        raise InstanceError(
            f"instance {instance.name!r} (pid {pid}) still runs after {STOP_TIMEOUT:.0f}s: "
            "use --force"
        )
    # serve removes its pid file on a clean exit; a killed one cannot.
    instance.pid_file.unlink(missing_ok=True)
    done(f"instance {instance.name!r} stopped")


@click.command()
@name_argument
@kill_option
def stop(name: str, force: bool) -> None:
    """Stop instance NAME (gracefully: messages being sent are finished).

    \b
    Example:
      mail-proxy stop myserver
    """
    halt(local(name), force)


@click.command()
@name_argument
@kill_option
def restart(name: str, force: bool) -> None:
    """Stop instance NAME if it runs, then start it in the background.

    \b
    Example:
      mail-proxy restart myserver
    """
    instance = local(name)
    halt(instance, force)
    launch(instance, None, None, background=True, dev_sink=None)


@click.command()
@name_argument
@json_option
def status(name: str, as_json: bool) -> None:
    """Show whether instance NAME runs, where, and where its files are.

    \b
    Example:
      mail-proxy status myserver
    """
    instance = Instance.named(name)
    record = describe(instance) | {
        "answers": answers(instance),
        "folder": str(instance.path),
    }
    if not instance.remote_url:
        record |= {"database": str(instance.database), "log": str(instance.log)}
    show_record(record, as_json, f"instance {name}")


@click.command()
@name_argument
@force_option
def delete(name: str, force: bool) -> None:
    """Delete instance NAME and all its data (database, key, token, log).

    A remote instance is only forgotten here; the proxy itself is untouched.

    \b
    Example:
      mail-proxy delete myserver --force
    """
    instance = Instance.named(name)
    instance.config()
    what = "Forget the remote" if instance.remote_url else "Delete, with all its data, the"
    confirm(f"{what} instance {name!r}?", force)
    if instance.state() is State.RUNNING:
        halt(instance, force=False)
    instance.delete()
    done(f"instance {name!r} deleted")


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.BadParameter("give an http:// or https:// URL", param_hint="--url")
    return url.rstrip("/")


@click.command()
@name_argument
@click.option("--url", required=True, help="Base URL of the proxy, e.g. https://mail.example.com.")
@click.option(
    "--token-stdin", is_flag=True, help="Read the admin token from standard input (scripts)."
)
def remote(name: str, url: str, token_stdin: bool) -> None:
    """Register a proxy running elsewhere as instance NAME (URL + admin token).

    The token comes from GMP_API_TOKEN, standard input (--token-stdin) or a prompt
    that does not echo; it is kept in the instance's admin.token (0600).

    \b
    Example:
      mail-proxy remote prod --url https://mail.example.com
      mail-proxy prod tenants list
    """
    instance = Instance.named(name)
    if instance.exists and not instance.remote_url:
        raise InstanceError(f"{name!r} is a local instance: choose another name")
    token = os.environ.get("GMP_API_TOKEN", "")
    if token_stdin:
        token = sys.stdin.readline().strip()
    elif not token:
        if not sys.stdin.isatty():
            raise click.UsageError("no token: set GMP_API_TOKEN or use --token-stdin")
        token = click.prompt("Admin token", hide_input=True)
    if not token:
        raise click.UsageError("the token is empty")
    instance.save_config({"url": _check_url(url)})
    instance.save_token(token)
    done(f"remote instance {name!r} registered ({url})")


@click.command()
@name_argument
@click.argument("tenant", required=False)
def use(name: str, tenant: str | None) -> None:
    """Make NAME (and TENANT) the default, so later commands may omit them.

    \b
    Examples:
      mail-proxy use myserver acme
      mail-proxy accounts list        # = mail-proxy myserver acme accounts list
      mail-proxy info                 # = mail-proxy myserver info
    """
    Instance.named(name).config()
    Context(name, tenant).save()
    done(f"using {name}" + (f" / {tenant}" if tenant else ""))


@click.command()
@json_option
def current(as_json: bool) -> None:
    """Show the instance and tenant chosen with `mail-proxy use`.

    \b
    Example:
      mail-proxy current
    """
    chosen = Context.load()
    show_record({"instance": chosen.instance, "tenant": chosen.tenant}, as_json, "current")


COMMANDS = [list_instances, start, stop, restart, status, delete, remote, use, current]
