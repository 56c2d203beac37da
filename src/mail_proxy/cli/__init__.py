"""The ``mail-proxy`` command line."""
