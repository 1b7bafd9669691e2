"""The dead-letter queue as a work queue: what was rejected, seen and redriven (or dismissed).

Every input the intake rejects is reported on ``intake.dlq.v1`` and kept as a record in the
``DlqStore`` (``gateway.store.dlq``). ``operations.DlqOperations`` lists, shows, redrives and
dismisses records, for the command line (``cli``) and the admin HTTP routes
(``gateway.web.admin_routes``). A redrive reads the input again through its channel's own code
(``rereading``): the stored raw copy, or for a scan the corrected file an operator put in the
quarantine folder, goes through the normalizers again and is published under the event id it
would have had; the quarantine follows (``quarantine``: the mail moves to ``Processed``, the
scan to ``processed/``).
"""
