"""Builds the tracker from settings: its fold (the due-date policies), store and consumer."""

from __future__ import annotations

from gateway.components import Components
from gateway.normalizers.due import load_policies
from gateway.settings import GatewaySettings
from gateway.tracker.erasures import ErasedComplaints
from gateway.tracker.service import TrackerService, tracker_consumer
from gateway.tracker.timeline import ComplaintFold


def complaint_fold(settings: GatewaySettings) -> ComplaintFold:
    """The fold, counting delays with the installation's policies (built-in and its file)."""
    return ComplaintFold(load_policies(settings.normalizer.due_policies_file))


def tracker_service(components: Components) -> TrackerService:
    settings = components.settings
    return TrackerService(
        tracker_consumer(settings.kafka, settings.tracker.group_id),
        components.backend.tracker,
        complaint_fold(settings),
        components.publisher,
        batch_size=settings.tracker.batch_size,
        erasures=ErasedComplaints(components.backend.privacy, components.backend.complaints),
        dlq=components.backend.dlq,
    )
