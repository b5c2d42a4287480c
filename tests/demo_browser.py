"""Drive the Gradio demo (``app.py``) in headless Chromium: a served app, a browser, page helpers.

The app runs in-process on 127.0.0.1 with a tiny random-weight checkpoint; the browser is the system
``chromium`` driven by Playwright through ``executable_path`` (Playwright never downloads one). Tests
that need them skip with the reason when chromium, Playwright or Gradio is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def chromium_path() -> str | None:
    """The system Chromium, from ``$STREAMVQA_CHROMIUM`` or the PATH."""
    explicit = os.environ.get("STREAMVQA_CHROMIUM")
    if explicit:
        return explicit if os.path.exists(explicit) else None
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


def skip_reason() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import gradio  # noqa: F401
        import playwright.sync_api  # noqa: F401
    except ImportError as error:
        return f"{error.name} is not installed: pip install -e '.[dev,demo]' (scripts/setup.sh does)"
    if chromium_path() is None:
        return "no chromium on PATH: apt-get install chromium (scripts/setup.sh tries), or set STREAMVQA_CHROMIUM"
    return None


@dataclass
class ServedApp:
    """The demo listening on ``url``; ``app`` is the Blocks (its ``registry`` maps tabs to streams)."""

    url: str
    app: Any


def serve_demo(checkpoint: Path, port: int) -> Iterator[ServedApp]:
    """Start ``app.py``'s page on 127.0.0.1:``port`` with ``checkpoint``; stop it afterwards."""
    import app as demo_app
    from pipeline.demo.stream import DemoEngine

    # a small window and budget so that the long-term tier and compression show within seconds
    args = demo_app.parse_args([
        "--model", str(checkpoint), "--device", "cpu", "--fps", "2", "--port", str(port),
        "--policy", "uniform_frames", "--window-frames", "4", "--budget-tokens", "150",
    ])  # fmt: skip
    config = demo_app.build_config(args).replace("model", dtype="float32", local_files_only=True)
    engine = DemoEngine.start(config)
    blocks = demo_app.build_app(engine, max_streams=4)
    blocks.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                  **demo_app.LAUNCH_OPTIONS)
    try:
        yield ServedApp(f"http://127.0.0.1:{port}/", blocks)
    finally:
        blocks.registry.close_all()
        blocks.close()
        engine.close()


def wait_until(condition, timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll ``condition()`` until it returns something truthy; fail with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout} s waiting for {what} (last value: {last!r})")


class DemoPage:
    """The handful of things a user does and sees on the demo page."""

    def __init__(self, page: Any, url: str) -> None:
        self.page = page
        page.goto(url)
        page.wait_for_selector("#upload-video input[type=file]", state="attached", timeout=30_000)

    def text(self, selector: str) -> str:
        return self.page.inner_text(selector)

    def status(self) -> str:
        return self.text("#status")

    def upload(self, path: Path) -> None:
        self.page.set_input_files("#upload-video input[type=file]", str(path))

    def connect(self, url: str) -> None:
        self.page.get_by_role("tab", name="Stream URL").click()
        self.page.fill("#url textarea, #url input", url)
        self.page.click("#connect")

    def frames_ingested(self) -> int:
        found = re.search(r"(\d+) frames ingested", self.text("#memory-stats"))
        return int(found.group(1)) if found else 0

    def plot_source(self) -> str | None:
        image = self.page.locator("#memory-plot img")
        return image.first.get_attribute("src") if image.count() else None

    def watch_answers(self) -> None:
        """Record every text the newest answer bubble shows (to prove it streamed in pieces)."""
        self.page.evaluate(
            """() => {
                window.__answerTexts = [];
                const chat = document.querySelector('#chat');
                new MutationObserver(() => {
                    const bots = chat.querySelectorAll('[data-testid=bot]');
                    if (!bots.length) return;
                    const text = bots[bots.length - 1].innerText;
                    const seen = window.__answerTexts;
                    if (seen[seen.length - 1] !== text) seen.push(text);
                }).observe(chat, {subtree: true, childList: true, characterData: true});
            }"""
        )

    def answer_texts(self) -> list[str]:
        return self.page.evaluate("() => window.__answerTexts || []")

    def ask(self, question: str) -> None:
        self.page.fill("#question textarea", question)
        self.page.click("#ask")

    def answer_text(self, timeout: float = 60) -> str:
        """The finished answer: the bubble stamped with a video time and without the typing cursor."""

        def finished() -> str | None:
            for text in reversed(self.page.locator("#chat [data-testid=bot]").all_inner_texts()):
                if "⏱" in text:
                    return text if "▌" not in text else None
            return None

        return wait_until(finished, timeout, "a finished answer")

    def evidence_captions(self) -> list[str]:
        return self.page.locator("#chat .gallery-item .caption-label").all_inner_texts()

    def evidence_images(self) -> int:
        return self.page.locator("#chat .gallery-item img").count()
