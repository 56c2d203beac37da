"""``python -m mail_proxy`` runs the same CLI as the ``mail-proxy`` command."""

from mail_proxy.cli.main import main

if __name__ == "__main__":
    main()
