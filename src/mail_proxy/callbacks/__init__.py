"""Outgoing calls to the tenants' applications (client sync), behind ``base.SyncClient``."""
