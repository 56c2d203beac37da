"""Client sync: reporting delivery events to each tenant's application.

``loop.SyncLoop`` decides when (``domain.sync_schedule``) and calls through
``client.SyncClient`` (``http.py``); ``ledger``, ``lease`` and
``acknowledgements`` keep its per-tenant bookkeeping.
"""
