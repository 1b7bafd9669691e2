"""Scanned letters made by the tests, with their ground truth, from the shared generator
(``../shared/corpus/postal/make_letters.py``: DejaVu fonts at 300 dpi, rotated, noisy, JPEG'd
like an office scan). Pages are rendered once per session and written where a test needs them.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import zxingcpp
from PIL import Image, ImageFilter

from tests.conftest import SHARED

GENERATOR = SHARED / "corpus" / "postal" / "make_letters.py"
DPI = 300


@dataclass(frozen=True)
class ScannedLetter:
    key: str
    page: Image.Image  # 8-bit grey, 300 dpi
    ground_truth: str
    sender: tuple[str, ...]


@functools.cache
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_letters", GENERATOR)
    assert spec is not None, f"{GENERATOR} is missing"
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@functools.cache
def scanned_letters() -> tuple[ScannedLetter, ...]:
    make = generator()
    letters = []
    for letter in make.LETTERS:
        clean, truth = make.render(letter)
        page = make.degrade(clean, letter).convert("L")
        letters.append(ScannedLetter(letter.key, page, truth, tuple(letter.sender)))
    return tuple(letters)


def blank_page() -> Image.Image:
    return Image.new("L", (2480, 3508), 250)


def separator_page() -> Image.Image:
    """A separator sheet: the code INTAKE-SEPARATOR as a QR code, mid-page."""
    code = zxingcpp.write_barcode_to_image(
        zxingcpp.create_barcode("INTAKE-SEPARATOR", zxingcpp.BarcodeFormat.QRCode), scale=12
    )
    page = Image.new("L", (2480, 3508), 255)
    page.paste(Image.fromarray(np.array(code)).convert("L"), (900, 1400))
    return page


def unreadable(page: Image.Image) -> Image.Image:
    """A page no one could read reliably: heavy blur, then noise-like bilevel."""
    small = page.resize((page.width // 6, page.height // 6)).filter(ImageFilter.GaussianBlur(2.5))
    return small.resize(page.size)


def save_jpeg(page: Image.Image, path: Path) -> Path:
    page.save(path, "JPEG", quality=60, dpi=(DPI, DPI))
    return path


def save_tiff(pages: list[Image.Image], path: Path) -> Path:
    pages[0].save(
        path, save_all=True, append_images=pages[1:], compression="tiff_lzw", dpi=(DPI, DPI)
    )
    return path


def save_pdf(pages: list[Image.Image], path: Path) -> Path:
    pages[0].save(path, "PDF", save_all=True, append_images=pages[1:], resolution=DPI)
    return path


def jpeg_bytes(page: Image.Image) -> bytes:
    buffer = io.BytesIO()
    page.save(buffer, "JPEG", quality=60, dpi=(DPI, DPI))
    return buffer.getvalue()
