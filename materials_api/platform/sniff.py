"""Content-type sniffing from a file's first bytes (its name is never trusted)."""

from __future__ import annotations

import unicodedata
from pathlib import PurePosixPath, PureWindowsPath

_OOXML = {".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
          ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
          ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation"}
_OLE = {".doc": "application/msword", ".xls": "application/vnd.ms-excel", ".ppt": "application/vnd.ms-powerpoint"}


class UnsupportedContent(ValueError):
    pass


def sniff(head: bytes, file_name: str) -> str:
    """The content type of an accepted material, or UnsupportedContent with the reason."""
    ext = PurePosixPath(file_name.lower()).suffix
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftyphevc"):
        return "image/heic"
    if head.startswith(b"PK\x03\x04"):
        if ext in _OOXML:
            return _OOXML[ext]
        if ext == ".ofd":
            return "application/ofd"  # China's fixed-layout format (GB/T 33190)
        return "application/zip"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return _OLE.get(ext, "application/x-ole-storage")
    if head.startswith((b"MZ", b"\x7fELF", b"#!", b"\xca\xfe\xba\xbe")):
        raise UnsupportedContent("executables and scripts are not materials")
    if head.lstrip().lower().startswith((b"<!doctype html", b"<html", b"<svg", b"<?xml")):
        raise UnsupportedContent("HTML, SVG and XML can carry scripts; upload a PDF or image instead")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # A multi-byte character may be cut at the end of the sniffed head.
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            raise UnsupportedContent("unrecognised binary format") from None
    if any(unicodedata.category(c) == "Cc" and c not in "\r\n\t" for c in text):
        raise UnsupportedContent("unrecognised binary format")
    return "text/plain; charset=utf-8"


def safe_file_name(raw: str | None) -> str:
    """A display name: last path component only, no control characters, at most 200 characters.
    It is stored as metadata and never becomes a path."""
    name = unicodedata.normalize("NFKC", raw or "")
    name = PureWindowsPath(PurePosixPath(name).name).name
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip().strip(".")
    return (name or "unnamed")[:200]
