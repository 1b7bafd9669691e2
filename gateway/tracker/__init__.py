"""Where each complaint stands, and how well the office keeps its promises.

- ``timeline``: events -> timeline entries, and the fold (pure);
- ``service``: the tracker's consumer group folding ``complaints.v1`` and ``notifications.v1``
  into the ``TrackerStore`` (``intake-gateway run --only tracker``);
- ``rebuild``: the same fold from the beginning of the topics (``intake-gateway tracker
  rebuild``);
- ``assembly``: built from settings; ``cli``: the commands.
"""
