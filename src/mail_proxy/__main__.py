"""``python -m mail_proxy`` and the ``mail-proxy`` command: the server's CLI.

The base install is the SDK only; the CLI (and the server that ``serve`` loads
when it runs) needs the ``server`` extra. A dependency missing at import or when
``serve`` loads the server is named in one sentence instead of a traceback.
"""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from mail_proxy.cli.main import main as cli

        cli()
    except ModuleNotFoundError as missing:
        if missing.name is None or missing.name.split(".")[0] == "mail_proxy":
            raise
        sys.exit(
            f"mail-proxy: the server is not installed ({missing.name} is missing):"
            " pip install 'mail-proxy[server]'"
        )


if __name__ == "__main__":
    main()
