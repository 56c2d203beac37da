"""Background loops of the proxy: fetch work, decide with ``domain``, act through ports."""
