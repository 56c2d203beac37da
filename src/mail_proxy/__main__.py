"""``python -m mail_proxy`` and the ``mail-proxy`` command: the server's CLI.

The base install is the SDK only; the CLI runs the server, which needs the
``server`` extra. Importing the CLI here, on call, lets a missing server dependency
be named in one sentence instead of a traceback.
"""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from mail_proxy.cli.main import main as cli
    except ModuleNotFoundError as missing:
        if missing.name is None or missing.name.split(".")[0] == "mail_proxy":
            raise
        sys.exit(
            f"mail-proxy: the server is not installed ({missing.name} is missing):"
            " pip install 'mail-proxy[server]'"
        )
    cli()


if __name__ == "__main__":
    main()
