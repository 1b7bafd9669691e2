"""The canonical events: CloudEvents envelopes, payload models, topics and JSON Schemas."""
