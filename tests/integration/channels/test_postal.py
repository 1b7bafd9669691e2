"""The postal channel on a real broker with real Tesseract (French and English) reading letters
the tests generate (``tests/support/letters.py``) with known ground truth."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pytest
from fpdf import FPDF

from gateway.channels.postal import PROCESSED, QUARANTINE, PostalChannel
from gateway.components import Components
from gateway.events import topics
from gateway.events.envelope import CloudEvent, parse_event
from gateway.ocr import OcrEngine, PageText
from gateway.ocr.tesseract import TesseractEngine
from gateway.publisher import KafkaPublisher
from gateway.settings import GatewaySettings, KafkaSettings
from tests.support.consumer import TopicReader
from tests.support.letters import (
    blank_page,
    save_jpeg,
    save_pdf,
    save_tiff,
    scanned_letters,
    separator_page,
    unreadable,
)
from tests.support.objects import stored_bytes

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXPECTED = {  # ground truth of the shared generator's letters
    "letter_01": ("TREM85031512", "+14186825145", "G1R 1S5"),
    "letter_02": ("BELF72110823", "+15819980042", None),
    "letter_03": ("COTM90552718", "+15145550199", None),
}


@contextlib.asynccontextmanager
async def postal_channel(
    kafka_settings: KafkaSettings, data_dir: Path, engine: OcrEngine | None = None, **postal: Any
) -> AsyncIterator[tuple[PostalChannel, Path]]:
    inbox = data_dir / "inbox"
    settings = GatewaySettings.model_validate(
        {
            "kafka": kafka_settings,
            "data_dir": data_dir,
            "postal": {"inbox": inbox, "settle_s": 0.3, "rescan_s": 1.0, **postal},
        }
    )
    async with KafkaPublisher(kafka_settings) as publisher:
        components = await Components.open(settings, publisher)
        channel = PostalChannel(
            settings.postal,
            components.intake,
            components.claims,
            components.state,
            engine or TesseractEngine(workers=2),
        )
        inbox.mkdir(parents=True, exist_ok=True)
        try:
            yield channel, inbox
        finally:
            await components.close()


async def pdf_texts(data_dir: Path, uri: str | None) -> list[str]:
    """The text of each page of a PDF in the claim-check store (what a search finds)."""
    document = pdfium.PdfDocument(await stored_bytes(data_dir, uri))
    try:
        return [document[n].get_textpage().get_text_range() for n in range(len(document))]
    finally:
        document.close()


async def events_after(
    reader: TopicReader, count: int, timeout_s: float = 120
) -> list[CloudEvent[Any]]:
    return [parse_event(record.value) for record in await reader.read(count, timeout_s=timeout_s)]


async def test_given_a_scanned_letter_dropped_then_a_complaint_with_exact_identifiers(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    letter = scanned_letters()[0]
    reader = TopicReader(kafka_settings.bootstrap, topics.COMPLAINTS)
    await reader.mark()
    async with postal_channel(kafka_settings, tmp_path) as (channel, inbox):
        task = asyncio.create_task(channel.run())
        save_jpeg(letter.page, inbox / "scan-0001.jpg.part").rename(inbox / "scan-0001.jpg")
        [event] = await events_after(reader, 1)
        for _ in range(100):
            if not (inbox / "scan-0001.jpg").exists():
                break
            await asyncio.sleep(0.1)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    nam, phone, postal_code = EXPECTED[letter.key]
    data = event.data
    assert event.type == "complaint.received"
    assert data.channel == "postal"
    assert [(i.value, i.valid) for i in data.identifiers] == [(nam, True)]
    assert data.complainant.phone == phone
    assert data.complainant.name == "Hélène Tremblay"
    assert postal_code in data.complainant.postal_address
    assert str(data.letter_date) == "2025-03-14"
    assert data.subject.startswith("Plainte concernant mon séjour")
    assert "low_ocr_confidence" not in data.flags
    assert data.language == "fr"
    scan, searchable = data.attachments
    assert (scan.filename, scan.media_type) == ("scan-0001.jpg", "image/jpeg")
    assert data.source_message.uri == scan.uri
    assert (searchable.filename, searchable.media_type) == (
        "scan-0001.searchable.pdf",
        "application/pdf",
    )
    assert searchable.derived_from == scan.sha256
    [page_text] = await pdf_texts(tmp_path, searchable.uri)
    assert "TREM 8503 1512" in page_text  # the words are in the PDF, where the scan shows them
    processed = list((inbox / PROCESSED).rglob("scan-0001.jpg"))
    assert len(processed) == 1
    assert not (inbox / "scan-0001.jpg").exists()


async def test_a_page_turned_upside_down_or_sideways_is_read_the_right_way(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    letter = scanned_letters()[1]
    async with postal_channel(kafka_settings, tmp_path) as (channel, inbox):
        path = save_jpeg(letter.page.rotate(90, expand=True), inbox / "sideways.jpg")
        pages = await channel._engine.read(path)  # the engine alone: what rotation gives
        channel._engine.close()
    [page] = pages
    assert page.rotation in (90, 270)
    assert page.confidence is not None
    assert page.confidence > 80
    assert "BELF 7211 0823" in page.text


async def test_a_batch_with_separator_sheets_becomes_one_complaint_per_letter(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    letters = scanned_letters()
    pages = [letters[0].page, separator_page(), letters[1].page, blank_page(), letters[2].page]
    reader = TopicReader(kafka_settings.bootstrap, topics.COMPLAINTS)
    await reader.mark()
    async with postal_channel(kafka_settings, tmp_path) as (channel, inbox):
        path = save_tiff(pages, inbox / "batch.tif")
        assert await channel.process(path) == PROCESSED
        events = await events_after(reader, 3)
        again = save_tiff(pages, inbox / "batch-again.tif")  # the same scan dropped twice
        assert await channel.process(again) == PROCESSED
        channel._engine.close()
    assert len(events) == 3
    by_rank = sorted(events, key=lambda event: event.data.attachments[1].filename)
    assert [event.data.attachments[1].filename for event in by_rank] == [
        f"batch-letter-{rank}.searchable.pdf" for rank in (1, 2, 3)
    ]
    for event in by_rank:  # each letter's PDF holds its own page, not the separators
        [text] = await pdf_texts(tmp_path, event.data.attachments[1].uri)
        assert event.data.identifiers[0].value[:4] in text.replace(" ", "")
    found = sorted(event.data.identifiers[0].value for event in events)
    assert found == sorted(nam for nam, _, _ in EXPECTED.values())
    assert len({event.data.reference for event in events}) == 3
    assert len(await events_after(reader, 4, timeout_s=3)) == 3  # no second set of events


async def test_a_pdf_with_a_text_layer_keeps_its_pages_in_the_searchable_copy(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    document = FPDF()
    document.add_page()
    document.set_font("helvetica", size=12)
    text = "Objet : plainte. Mon numero d'assurance maladie est TREM 8503 1512. Merci."
    document.multi_cell(0, 10, text)
    reader = TopicReader(kafka_settings.bootstrap, topics.COMPLAINTS)
    await reader.mark()
    async with postal_channel(kafka_settings, tmp_path) as (channel, inbox):
        document.output(str(inbox / "typed.pdf"))
        assert await channel.process(inbox / "typed.pdf") == PROCESSED
        channel._engine.close()
    [event] = await events_after(reader, 1)
    [page_text] = await pdf_texts(tmp_path, event.data.attachments[1].uri)
    assert "TREM 8503 1512" in page_text


async def test_given_searchable_pdfs_off_then_only_the_scan_is_attached(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    reader = TopicReader(kafka_settings.bootstrap, topics.COMPLAINTS)
    await reader.mark()
    engine = TesseractEngine(workers=1, searchable_pdf=False)
    async with postal_channel(kafka_settings, tmp_path, engine=engine) as (channel, inbox):
        path = save_jpeg(scanned_letters()[0].page, inbox / "plain.jpg")
        assert await channel.process(path) == PROCESSED
        engine.close()
    [event] = await events_after(reader, 1)
    assert [a.filename for a in event.data.attachments] == ["plain.jpg"]


async def test_a_hard_to_read_page_is_flagged_not_guessed(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    reader = TopicReader(kafka_settings.bootstrap, topics.COMPLAINTS)
    await reader.mark()
    async with postal_channel(kafka_settings, tmp_path) as (channel, inbox):
        path = save_pdf([unreadable(scanned_letters()[2].page)], inbox / "blurred.pdf")
        await channel.process(path)
        channel._engine.close()
    events = await events_after(reader, 1, timeout_s=10)
    if events:  # some words were read: the complaint says it needs a person
        flags = events[0].data.flags
        assert "low_ocr_confidence" in flags or "needs_review" in flags
        assert [i for i in events[0].data.identifiers if i.valid] == []
    else:  # nothing at all was read: quarantined with a reason
        assert list((tmp_path / "inbox" / QUARANTINE).iterdir())


async def test_corrupt_encrypted_empty_and_foreign_files_go_to_quarantine_with_a_reason(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    locked = FPDF()
    locked.set_encryption(owner_password="o", user_password="secret")
    locked.add_page()
    reader = TopicReader(kafka_settings.bootstrap, topics.DLQ)
    await reader.mark()
    async with postal_channel(kafka_settings, tmp_path) as (channel, inbox):
        locked.output(str(inbox / "locked.pdf"))
        (inbox / "empty.tif").write_bytes(b"")
        (inbox / "broken.pdf").write_bytes(b"%PDF-1.7 nothing else")
        (inbox / "letter.docx").write_bytes(b"PK\x03\x04")
        outcomes = [
            await channel.process(inbox / name)
            for name in sorted(p.name for p in inbox.iterdir() if p.is_file())
        ]
        channel._engine.close()
    assert outcomes == [QUARANTINE] * 4
    rejected = await events_after(reader, 4, timeout_s=30)
    reasons = sorted(event.data.reason_code for event in rejected)
    assert reasons == ["corrupt_pdf", "empty_file", "encrypted_pdf", "unsupported_type"]
    assert all(event.data.source_message.uri for event in rejected)
    assert sorted(p.name for p in (tmp_path / "inbox" / QUARANTINE).iterdir()) == [
        "broken.pdf",
        "empty.tif",
        "letter.docx",
        "locked.pdf",
    ]


class BrokenEngine:
    """An OCR engine with a bug (or a file no reader survives): every read raises."""

    pages_at_once = 1

    async def read(self, path: Path) -> list[PageText]:
        raise RuntimeError(f"a bug in a reader, on {path.name}")

    async def searchable_pdf(self, path: Path, pages: Sequence[PageText]) -> bytes | None:
        raise AssertionError("never reached: the read failed")

    def close(self) -> None:
        pass


async def test_a_file_that_breaks_the_reader_is_quarantined_not_retried_forever(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    reader = TopicReader(kafka_settings.bootstrap, topics.DLQ)
    await reader.mark()
    async with postal_channel(kafka_settings, tmp_path, engine=BrokenEngine()) as (
        channel,
        inbox,
    ):
        path = save_jpeg(scanned_letters()[0].page, inbox / "letter.jpg")
        assert await channel.process(path) == QUARANTINE
    [rejected] = await events_after(reader, 1, timeout_s=15)
    assert rejected.data.reason_code == "unreadable_document"
    assert "RuntimeError" in rejected.data.reason
    assert [p.name for p in (inbox / QUARANTINE).iterdir()] == ["letter.jpg"]
