"""A real HTTP server (uvicorn in a thread) on the in-process chain, and Debian's Chromium
driven by Playwright: no browser download, `executablePath` points at /usr/bin/chromium."""

import shutil
import threading
import time
from pathlib import Path

import pytest
import uvicorn

from chain.clock import MovableClock
from materials_api.main import create_app
from materials_api.platform.runtime import Runtime
from tests.conftest import free_port

OUT = Path(__file__).resolve().parents[2] / "test-output" / "pages"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def site(tmp_path, evm, database_url):
    from materials_api.platform.config import Settings

    port = free_port()
    # No chain mirror follows beside this in-process app (as no anchorer runs): no mirror-age check.
    settings = Settings(home=tmp_path / "home", database_url=database_url, chain_rpc_url="in-process",
                        public_url=f"http://127.0.0.1:{port}", mirror_max_age=0)
    runtime = Runtime.open(settings, client=evm, clock=MovableClock())  # a test moves time, never sleeps past it
    app = create_app(runtime, reconcile=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    yield app, f"http://127.0.0.1:{port}", runtime
    server.should_exit = True
    thread.join(timeout=10)
    runtime.close()


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise RuntimeError("Debian's chromium is not installed: scripts/bootstrap installs it")
    video = tmp_path_factory.mktemp("camera")
    pw = sync_playwright().start()
    b = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS + [
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={video / 'camera.y4m'}"])
    b.camera_file = video / "camera.y4m"
    yield b
    b.close()
    pw.stop()


def write_y4m(path: Path, png: bytes, frames: int = 30) -> None:
    """A Y4M video of a picture: what Chromium's fake camera plays."""
    import io

    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    w, h = (img.width // 2) * 2, (img.height // 2) * 2
    canvas = Image.new("RGB", (max(w, 640), max(h, 480)), (255, 255, 255))
    canvas.paste(img.crop((0, 0, w, h)), ((canvas.width - w) // 2, (canvas.height - h) // 2))
    w, h = canvas.size
    y, cb, cr = canvas.convert("YCbCr").split()
    u = cb.resize((w // 2, h // 2))
    v = cr.resize((w // 2, h // 2))
    frame = b"FRAME\n" + y.tobytes() + u.tobytes() + v.tobytes()
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            f.write(frame)
