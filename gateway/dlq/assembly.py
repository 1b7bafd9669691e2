"""The dead-letter operations of one process, built on its components (the same intake, stores
and settings as its channels): each channel's way of reading an input again."""

from __future__ import annotations

from gateway.components import Components
from gateway.dlq.mail import MailRereader
from gateway.dlq.operations import DlqOperations, Rereader
from gateway.dlq.scans import ScanRereader
from gateway.dlq.submissions import SmsRereader, SubmissionRereader
from gateway.events.common import Channel
from gateway.ocr import OcrEngine
from gateway.ocr.tesseract import TesseractEngine


def dlq_operations(components: Components) -> DlqOperations:
    settings, claims = components.settings, components.claims
    intake, state, postal = components.intake, components.state, settings.postal

    def ocr_engine() -> OcrEngine:
        return TesseractEngine(postal.workers, postal.languages, postal.dpi, postal.searchable_pdf)

    readers: dict[str, Rereader] = {
        Channel.EMAIL: MailRereader(settings.imap.accounts(), claims, intake, state),
        Channel.POSTAL: ScanRereader(postal, claims, intake, state, ocr_engine),
        Channel.WEBFORM: SubmissionRereader(settings, claims, state),
        Channel.SMS: SmsRereader(claims, components.ledger),
    }
    return DlqOperations(components.backend.dlq, intake, state, readers)
