"""QR rendering in one uniform style (统一样式): the code, then the company name and its USCC.

SVG is written directly from the QR matrix (one path, fast; the matrix comes from libqrencode); PNG is drawn with Pillow using a
CJK font found on the machine (Debian's fonts-wqy-microhei by default, or QIYEMA_CJK_FONT), so
Chinese names render as Chinese.
"""

from __future__ import annotations

import io
import os
from functools import lru_cache
from html import escape
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from .qrencode import encode

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)
ERROR_LEVEL = "M"
FONT_FAMILY = "'Noto Sans SC','WenQuanYi Micro Hei','Microsoft YaHei','PingFang SC',sans-serif"
INK = "#1a1a1a"
ACCENT = "#b71c1c"  # the red of official seals


class RenderError(RuntimeError):
    pass


@lru_cache(maxsize=1)
def cjk_font_path() -> Path:
    for candidate in (os.environ.get("QIYEMA_CJK_FONT"), *FONT_CANDIDATES):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise RenderError("no CJK font found: install Debian's fonts-wqy-microhei (scripts/bootstrap does) "
                      "or set QIYEMA_CJK_FONT to a .ttf/.ttc file")


@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(cjk_font_path()), size)


def qr_version(text: str) -> int:
    return encode(text, ERROR_LEVEL).version


def _wrap(name: str, max_width: float, measure) -> list[str]:
    lines, line = [], ""
    for ch in name:
        if measure(line + ch) > max_width and line:
            lines.append(line)
            line = ch
        else:
            line += ch
    if line:
        lines.append(line)
    if len(lines) > 2:
        lines = [lines[0], lines[1][:-1] + "…"]
    return lines


def _svg_measure(size: int):
    return lambda text: sum(size if ord(c) > 0x2E7F else size * 0.6 for c in text)


def render_svg(url: str, name: str, uscc: str, *, module: int = 6, border: int = 4) -> str:
    symbol = encode(url, ERROR_LEVEL)
    n, mods = symbol.width, symbol.modules
    width = (n + 2 * border) * module
    name_size = max(14, width // 16)
    small = max(11, width // 24)
    lines = _wrap(name, width - 2 * module * border // 2, _svg_measure(name_size))
    text_top = width
    height = text_top + name_size * 1.35 * len(lines) + small * 2.2
    path = []
    for y in range(n):
        row = mods[y * n:(y + 1) * n]
        x = 0
        while x < n:
            if row[x] & 1:
                start = x
                while x < n and row[x] & 1:
                    x += 1
                # A closed 1-module-high rectangle per run: filled, it renders in every viewer.
                path.append(f"M{start + border},{y + border}h{x - start}v1h-{x - start}z")
            else:
                x += 1
    texts = []
    y = text_top + name_size
    for line in lines:
        texts.append(f'<text x="{width / 2:.0f}" y="{y:.0f}" font-size="{name_size}" font-weight="bold" '
                     f'text-anchor="middle" fill="{INK}">{escape(line)}</text>')
        y += name_size * 1.35
    texts.append(f'<text x="{width / 2:.0f}" y="{y + small * 0.2:.0f}" font-size="{small}" text-anchor="middle" '
                 f'fill="{ACCENT}">统一社会信用代码 {escape(uscc)}</text>')
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height:.0f}" '
        f'viewBox="0 0 {width} {height:.0f}" font-family="{FONT_FAMILY}">'
        f'<title>企业码 {escape(name)} {escape(uscc)}</title>'
        f'<rect width="100%" height="100%" fill="#fff"/>'
        f'<path transform="scale({module})" fill="{INK}" shape-rendering="crispEdges" d="{"".join(path)}"/>'
        + "".join(texts) + "</svg>"
    )


def render_png(url: str, name: str, uscc: str, *, module: int = 8, border: int = 4) -> bytes:
    symbol = encode(url, ERROR_LEVEL)
    n = symbol.width
    width = (n + 2 * border) * module
    name_font = _font(max(16, width // 16))
    small_font = _font(max(12, width // 24))
    lines = _wrap(name, width - border * module, name_font.getlength)
    line_h = int(name_font.size * 1.35)
    height = width + line_h * len(lines) + int(small_font.size * 2.2)
    img = Image.new("L", (width, height), 255)
    qr = Image.new("1", (n, n), 1)
    qr.putdata([0 if m & 1 else 1 for m in symbol.modules])
    img.paste(qr.resize((n * module, n * module), Image.NEAREST), (border * module, border * module))
    rgb = img.convert("RGB")
    draw = ImageDraw.Draw(rgb)
    y = width
    for line in lines:
        draw.text((width / 2, y), line, font=name_font, fill=INK, anchor="ma")
        y += line_h
    draw.text((width / 2, y + small_font.size * 0.3), f"统一社会信用代码 {uscc}", font=small_font, fill=ACCENT, anchor="ma")
    out = io.BytesIO()
    rgb.save(out, "PNG", optimize=False, compress_level=3)
    return out.getvalue()


def has_glyphs(text: str) -> bool:
    """True if the CJK font draws every character of `text` (no tofu boxes)."""
    font = _font(32)
    tofu = font.getmask("\uffff").getbbox(), bytes(font.getmask("\uffff"))
    for ch in text:
        mask = font.getmask(ch)
        if (mask.getbbox(), bytes(mask)) == tofu:
            return False
    return True
