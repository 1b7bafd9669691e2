"""The state every replica shares, on PostgreSQL (``GATEWAY_STATE_URL``): one module per kind
of state, each implementing the protocol of the embedded store it stands beside."""
