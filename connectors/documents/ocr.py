"""Tesseract OCR through its command line (Debian ``tesseract-ocr`` + ``tesseract-ocr-chi-sim``).

The CLI rather than a wrapper library: pytesseract would only run the same subprocess, and the
CLI keeps the dependency to one Debian package. Output is normalised for field extraction:
Tesseract puts spaces between CJK characters and around full-width colons, which the
regexes in :mod:`.extract` should not have to know about.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from PIL import Image

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uff08\uff09\uff1a\uff0c\u3001\u3002"
_SPACE_BETWEEN_CJK = re.compile(rf"(?<=[{_CJK}])[ \t]+(?=[{_CJK}])")
_SPACE_AROUND_COLON = re.compile(r"[ \t]*([:：])[ \t]*")


class OcrUnavailable(RuntimeError):
    """Tesseract or a language model it needs is not installed; the message says which."""


def normalise(text: str) -> str:
    """Join CJK characters Tesseract spaced apart and tidy colons; drop blank lines.

    >>> normalise("采 购 单 位 : 杭州 市\\n\\n预算 金额 ：12 万元")
    '采购单位:杭州市\\n预算金额：12 万元'
    """
    lines = []
    for raw in text.splitlines():
        line = _SPACE_AROUND_COLON.sub(r"\1", _SPACE_BETWEEN_CJK.sub("", raw)).strip()
        if line:
            lines.append(line)
    return "\n".join(lines)


def check(languages: str, command: str = "tesseract") -> str:
    """Path of the tesseract binary once every language in ``chi_sim+eng`` is installed."""
    found = shutil.which(command)
    if found is None:
        raise OcrUnavailable(f"{command!r} not found: apt-get install tesseract-ocr")
    listed = subprocess.run(  # noqa: S603 - fixed arguments, binary from PATH lookup
        [found, "--list-langs"], capture_output=True, text=True, timeout=30, check=False
    )
    have = set(listed.stdout.split())
    missing = [lang for lang in languages.split("+") if lang not in have]
    if missing:
        raise OcrUnavailable(
            f"tesseract has no {missing} model: apt-get install "
            + " ".join(f"tesseract-ocr-{m.replace('_', '-')}" for m in missing)
        )
    return found


def ocr_image(
    image: Image.Image, *, languages: str, command: str = "tesseract", timeout_s: float = 120
) -> str:
    """The normalised text of one page image (``--psm 6``: a uniform block of text)."""
    binary = check(languages, command)
    with tempfile.TemporaryDirectory(prefix="dealstream-ocr-") as folder:
        path = Path(folder) / "page.png"
        image.convert("L").save(path)
        done = subprocess.run(  # noqa: S603 - fixed arguments, our own temporary file
            [binary, str(path), "-", "-l", languages, "--psm", "6"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    if done.returncode != 0:
        raise OcrUnavailable(f"tesseract failed ({done.returncode}): {done.stderr.strip()[:300]}")
    return normalise(done.stdout)
