"""Outgoing SMTP: the ``Mailer`` port (``base``) and its pooled aiosmtplib adapter."""
