"""Attachments between the queue and MIME building: resolving them, and the policy
a tenant applies to them (large files offloaded) before the message is built."""
