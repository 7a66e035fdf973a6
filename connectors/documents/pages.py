"""The text of every page of a document: a PDF's text layer, or OCR where there is none.

A PDF page whose text layer has fewer than ``min_chars`` characters is taken for a scan and
rasterised with pypdfium2 (PDFium, shipped in the wheel) at ``dpi`` for Tesseract. Images
(PNG, JPEG, TIFF) are one OCR page each.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pypdfium2  # type: ignore[import-untyped]
from PIL import Image
from pypdf import PdfReader
from pypdf.errors import PdfReadError

from dealstream.connectors.documents.ocr import normalise, ocr_image
from dealstream.connectors.sdk.errors import RecordError

PDF_SUFFIXES = frozenset({".pdf"})
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff"})
SUFFIXES = PDF_SUFFIXES | IMAGE_SUFFIXES


@dataclass(frozen=True)
class Page:
    number: int  # 1-based
    text: str
    extraction: Literal["text", "ocr"]


def read_pages(
    path: Path, data: bytes, *, languages: str, dpi: int = 300, min_chars: int = 20
) -> list[Page]:
    """Every page of ``data`` (the bytes of ``path``); RecordError when it cannot be read."""
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        try:
            image = Image.open(io.BytesIO(data))
            image.load()
        except (OSError, ValueError) as error:
            raise RecordError("bad_image", f"{path.name}: {error}") from None
        return [Page(1, ocr_image(image, languages=languages), "ocr")]
    if suffix not in PDF_SUFFIXES:
        raise RecordError("unsupported", f"{path.name}: not a PDF or image ({suffix!r})")
    try:
        reader = PdfReader(io.BytesIO(data))
        texts = [normalise(page.extract_text() or "") for page in reader.pages]
    except (PdfReadError, OSError, ValueError, KeyError) as error:
        raise RecordError("bad_pdf", f"{path.name}: {error}") from None
    pages: list[Page] = []
    scanned = [i for i, text in enumerate(texts) if len(text) < min_chars]
    rendered = _render(data, scanned, dpi) if scanned else {}
    for index, text in enumerate(texts):
        if index in rendered:
            pages.append(Page(index + 1, ocr_image(rendered[index], languages=languages), "ocr"))
        else:
            pages.append(Page(index + 1, text, "text"))
    return pages


def _render(data: bytes, indexes: list[int], dpi: int) -> dict[int, Image.Image]:
    document: Any = pypdfium2.PdfDocument(data)
    try:
        return {i: document[i].render(scale=dpi / 72).to_pil() for i in indexes}
    finally:
        document.close()
