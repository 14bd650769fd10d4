"""Text files people bring: CSV saved by Excel in China is GB18030 (GBK), elsewhere UTF-8 (with
or without a byte-order mark). The encoding is found by reading the whole file once, strictly:
UTF-8 first (GB18030 would read UTF-8 bytes as other characters), then GB18030. A file that is
neither is refused with the way to convert it, never half read."""

from __future__ import annotations

import codecs
from pathlib import Path

UTF8 = "utf-8-sig"
GB18030 = "gb18030"
CONVERT = ("save it from Excel as \"CSV UTF-8\", or convert it: iconv -f GB18030 -t UTF-8 FILE > FILE.utf8.csv "
           "（请在 Excel 中另存为“CSV UTF-8”，或用 iconv 转换）")


class TextEncodingError(ValueError):
    pass


def _decodes(path: Path, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    try:
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                decoder.decode(block)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def text_encoding(path: Path) -> str:
    """`utf-8-sig` or `gb18030`, whichever reads the whole file; else TextEncodingError."""
    for encoding in (UTF8, GB18030):
        if _decodes(path, encoding):
            return encoding
    raise TextEncodingError(f"{path}: neither UTF-8 nor GB18030 (GBK) text; {CONVERT}")
