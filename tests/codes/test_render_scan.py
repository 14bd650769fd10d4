"""Rendering in the uniform style and scanning back from simulated photos."""

import io
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from codes import render, token
from codes.qrencode import encode
from codes.scan import ScanError, scan
from codes.verify import Status, verify
from tests.codes.test_token import KEY, ORIGIN, offline

OUT = Path(__file__).resolve().parents[2] / "test-output" / "codes"
NAME = "上海杨浦区示例智能科技发展有限公司"
USCC = "91350100M000100Y43"


@pytest.fixture(scope="module")
def url():
    return token.static_code(ORIGIN, USCC, 7, KEY)


def photo(png: bytes, angle: float, scale: float, quality: int) -> bytes:
    """A phone photo of a printed code: rotated, smaller, on a grey table, JPEG-compressed."""
    img = Image.open(io.BytesIO(png)).convert("RGB")
    img = img.resize((int(img.width * scale), int(img.height * scale)), Image.BILINEAR)
    img = img.rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor=(120, 120, 120))
    canvas = Image.new("RGB", (img.width + 80, img.height + 80), (120, 120, 120))
    canvas.paste(img, (40, 40))
    out = io.BytesIO()
    canvas.save(out, "JPEG", quality=quality)
    return out.getvalue()


def test_static_code_fits_a_small_robust_qr(url):
    assert encode(url, "M").version <= 6


def test_png_shows_the_chinese_name_and_scans_back(url):
    png = render.render_png(url, NAME, USCC)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "static-code.png").write_bytes(png)
    assert render.has_glyphs(NAME), "the CJK font lacks glyphs: the name would show as boxes"
    assert not render.has_glyphs("\U0010fffd")  # the check itself can tell a missing glyph
    assert scan(png) == [url]
    img = Image.open(io.BytesIO(png))
    assert img.height > img.width  # the name and USCC sit under the code


@pytest.mark.parametrize("angle", [10, 15, 20, -12])
def test_a_photographed_code_scans_and_verifies(url, angle):
    picture = photo(render.render_png(url, NAME, USCC), angle=angle, scale=0.45, quality=60)
    if angle == 15:
        (OUT / "static-code-photo.jpg").write_bytes(picture)
    assert scan(picture) == [url]
    assert verify(scan(picture)[0], offline()).facts["genuine"] == Status.VALID


def test_svg_is_well_formed_and_its_modules_scan_back(url):
    svg = render.render_svg(url, NAME, USCC)
    (OUT / "static-code.svg").write_text(svg, encoding="utf-8")
    root = ET.fromstring(svg)
    ns = {"s": "http://www.w3.org/2000/svg"}
    texts = "".join(t.text for t in root.findall("s:text", ns))
    assert NAME[:8] in texts and USCC in texts
    # Rasterise the module path ourselves and scan it: the SVG's geometry is the code.
    path = root.find("s:path", ns)
    module = int(re.search(r"scale\((\d+)\)", path.get("transform")).group(1))
    img = Image.new("L", (int(root.get("width")), int(float(root.get("height")))), 255)
    draw = ImageDraw.Draw(img)
    for x, y, w in re.findall(r"M(\d+),(\d+)h(\d+)", path.get("d")):
        x, y, w = int(x), int(y), int(w)
        draw.rectangle([x * module, y * module, (x + w) * module - 1, (y + 1) * module - 1], fill=0)
    assert scan(img) == [url]


def test_long_names_wrap_to_two_lines_at_most(url):
    svg = render.render_svg(url, "上海" * 60 + "有限公司", USCC)
    root = ET.fromstring(svg)
    lines = [t.text for t in root.findall("{http://www.w3.org/2000/svg}text")]
    assert len(lines) == 3 and lines[1].endswith("…")


def test_a_picture_without_a_code_says_so():
    blank = io.BytesIO()
    Image.new("RGB", (300, 300), (200, 200, 200)).save(blank, "PNG")
    with pytest.raises(ScanError) as info:
        scan(blank.getvalue())
    assert info.value.code == "no_code"


def test_a_file_that_is_not_a_picture_says_so():
    with pytest.raises(ScanError) as info:
        scan(b"%PDF-1.4 not an image")
    assert info.value.code == "image_unreadable"


def test_a_foreign_qr_gets_a_clear_invalid_verdict():
    foreign = render.render_png("WIFI:S:cafe;T:WPA;P:secret;;", "某咖啡店", USCC)
    text = scan(foreign)[0]
    verdict = verify(text, offline())
    assert verdict.status == Status.INVALID and verdict.checks[0].reason == "code_not_qiyema"
