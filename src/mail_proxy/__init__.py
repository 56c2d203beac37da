"""mail-proxy: a durable outgoing e-mail queue with SMTP delivery and client sync."""

__version__ = "0.1.0"
