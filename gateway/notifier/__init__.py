"""The notifier: a separate consumer of ``complaints.v1`` (its own consumer group) that sends
acknowledgements, email-validation links and SMS codes. It imports the event schemas, never the
channels. Not implemented yet (see the open notifier issue)."""
