"""Kafka topic names (fixed by the interface contract)."""

from typing import Final

COMPLAINTS: Final = "complaints.v1"
NOTIFICATIONS: Final = "notifications.v1"
DLQ: Final = "intake.dlq.v1"

ALL: Final = (COMPLAINTS, NOTIFICATIONS, DLQ)
