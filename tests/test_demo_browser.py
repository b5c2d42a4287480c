"""End-to-end tests of the Gradio demo in headless Chromium (issue 8).

A real page, a real browser, real ffmpeg-made videos and a real ffmpeg stream server on 127.0.0.1;
the model is the tiny random-weight checkpoint (answers are noise, everything else is real).
Set ``STREAMVQA_DEMO_SCREENSHOT=docs/demo.png`` to also write the README's screenshot.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.demo_browser import DemoPage, ServedApp, chromium_path, serve_demo, skip_reason, wait_until
from tests.video_factory import HttpStreamServer, free_port, make_test_video, make_text_as_video

pytestmark = [pytest.mark.skipif(skip_reason() is not None, reason=str(skip_reason())), pytest.mark.timeout(240)]

STAMP = re.compile(r"⏱ at (\d+\.\d) s of video")
CAPTION = re.compile(r"^\d+\.\d s · \d+% in memory$")


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("demo_videos")
    return {
        "clip": make_test_video(root / "clip.mp4", seconds=30, fps=10, size=(320, 240)),
        "live": make_test_video(root / "live.mp4", seconds=4, fps=10, size=(320, 240), gop=10),
        "not_a_video": make_text_as_video(root / "holiday.mp4"),
    }


@pytest.fixture(scope="module")
def served(tiny_checkpoints: dict[str, Path]) -> Iterator[ServedApp]:
    yield from serve_demo(tiny_checkpoints["qwen2_5_vl"], free_port())


@pytest.fixture(scope="module")
def playwright() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as instance:
        yield instance


@pytest.fixture(scope="module")
def browser(playwright) -> Iterator[object]:
    instance = playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                          args=["--autoplay-policy=no-user-gesture-required"])  # fmt: skip
    yield instance
    instance.close()


@pytest.fixture(scope="module")
def camera_browser(playwright) -> Iterator[object]:
    """Chromium with a fake camera (a test pattern) that pages may use without a prompt."""
    fake = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
    instance = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=fake)
    yield instance
    instance.close()


@pytest.fixture
def page(browser, served: ServedApp) -> Iterator[DemoPage]:
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    yield DemoPage(context.new_page(), served.url)
    context.close()


def test_upload_plays_answers_while_playing_with_evidence_and_live_memory(
    page: DemoPage, videos: dict[str, Path], tmp_path: Path
) -> None:
    assert "random weights" in page.text("#banner")
    page.upload(videos["clip"])
    wait_until(lambda: "Watching upload" in page.status(), 30, "the stream to start")
    wait_until(lambda: page.frames_ingested() >= 4, 30, "frames to be ingested")
    plot_before = wait_until(page.plot_source, 10, "the memory plot")
    assert page.page.evaluate("() => { const v = document.querySelector('#upload-video video');"
                              " return v !== null && v.currentTime > 0 && !v.paused; }"), "the video is not playing"

    page.watch_answers()
    page.ask("What is moving across the screen?")
    answer = page.answer_text()
    stamp = STAMP.search(answer)
    assert stamp, answer
    assert 0 < float(stamp.group(1)) < 30
    partial = [text for text in page.answer_texts() if "▌" in text and STAMP.search(text)]
    assert len(partial) >= 2, f"the answer did not stream in pieces: {page.answer_texts()}"
    assert page.frames_ingested() < 60, "the question was answered only after the whole video"

    wait_until(page.evidence_images, 15, "evidence thumbnails")
    captions = page.evidence_captions()
    assert captions and all(CAPTION.match(caption) for caption in captions), captions
    assert "Frames resident in memory" in page.text("#chat")  # labelled for what they are

    wait_until(lambda: page.plot_source() not in (None, plot_before), 15, "the memory plot to change")
    wait_until(lambda: re.search(r"Compression (?!1\.00)\d", page.text("#memory-stats")), 20, "compression")
    stats = page.text("#memory-stats")
    for needle in ("short-term", "long-term", "Compression", "frames/s", "lag", "dropped"):
        assert needle in stats
    page.page.locator("#chat").scroll_into_view_if_needed()
    shot = tmp_path / "demo.png"
    page.page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("STREAMVQA_DEMO_SCREENSHOT"):
        shutil.copy(shot, os.environ["STREAMVQA_DEMO_SCREENSHOT"])


def test_stream_url_served_by_ffmpeg_on_localhost(page: DemoPage, videos: dict[str, Path]) -> None:
    with HttpStreamServer(videos["live"], duration=40) as server:
        page.connect(server.url)
        wait_until(lambda: "Watching url" in page.status(), 30, "the URL stream to start")
        wait_until(lambda: page.frames_ingested() >= 4, 30, "frames from the URL")
        page.ask("What do you see?")
        assert STAMP.search(page.answer_text())
        wait_until(page.evidence_images, 15, "evidence thumbnails")
        assert page.page.locator("#live-frame img").count() == 1


def test_errors_are_shown_in_the_page_and_the_app_keeps_running(
    page: DemoPage, videos: dict[str, Path], served: ServedApp
) -> None:
    page.upload(videos["not_a_video"])
    message = wait_until(lambda: "Error" in page.status() and page.status(), 30, "the bad-upload message")
    assert "holiday.mp4" in message and "Traceback" not in message

    dead = f"http://127.0.0.1:{free_port()}/live.ts"
    page.connect(dead)
    message = wait_until(lambda: dead in page.status() and page.status(), 30, "the dead-URL message")
    assert "Error" in message and "Traceback" not in message

    page.ask("Anything?")  # asking before any stream works is refused politely
    wait_until(lambda: "before asking" in page.status(), 10, "the no-stream message")

    page.page.get_by_role("tab", name="Upload").click()
    page.page.locator("#upload-video button[aria-label='Clear']").click()
    page.upload(videos["clip"])
    wait_until(lambda: page.frames_ingested() >= 2, 30, "a good upload to work after the errors")
    page.page.click("#reset")
    wait_until(lambda: "reset" in page.status(), 10, "the reset message")
    wait_until(lambda: len(served.app.registry) == 0, 10, "the reset to release the stream")


def test_each_tab_has_its_own_stream_released_when_it_closes(
    browser, served: ServedApp, videos: dict[str, Path]
) -> None:
    contexts = [browser.new_context() for _ in range(2)]
    pages = [DemoPage(context.new_page(), served.url) for context in contexts]
    for page in pages:
        page.upload(videos["clip"])
    for page in pages:
        wait_until(lambda page=page: page.frames_ingested() >= 2, 30, "both tabs to ingest")
    assert len(served.app.registry) == 2
    page = pages[0]
    page.page.click("#pause")
    wait_until(lambda: "paused" in page.text("#memory-stats"), 10, "the pause to show")
    # frames captured just before the pause may still complete a batch: let the other tab move on first
    other = pages[1].frames_ingested()
    wait_until(lambda: pages[1].frames_ingested() >= other + 2, 15, "the other tab to keep ingesting")
    held = page.frames_ingested()
    other = pages[1].frames_ingested()
    wait_until(lambda: pages[1].frames_ingested() >= other + 2, 15, "the other tab to keep ingesting")
    assert page.frames_ingested() == held, "a paused tab kept ingesting"
    contexts[0].close()
    wait_until(lambda: len(served.app.registry) == 1, 30, "the closed tab to release its stream")
    contexts[1].close()
    wait_until(lambda: len(served.app.registry) == 0, 30, "every stream to be released")


def _open_webcam(browser, served: ServedApp, granted: bool) -> tuple[object, DemoPage]:
    context = browser.new_context(permissions=["camera"] if granted else [])
    page = DemoPage(context.new_page(), served.url)
    page.page.get_by_role("tab", name="Webcam").click()
    page.page.get_by_text("Click to Access Webcam").click()
    return context, page


def test_webcam_frames_stream_into_memory(camera_browser, served: ServedApp) -> None:
    context, page = _open_webcam(camera_browser, served, granted=True)
    try:
        record = page.page.locator("#webcam button[aria-label='capture photo']")
        record.wait_for(timeout=15_000)
        record.click()  # a streaming image component starts sending frames
        wait_until(lambda: "Watching webcam" in page.status(), 30, "the webcam stream to start")
        wait_until(lambda: page.frames_ingested() >= 2, 30, "webcam frames in memory")
        page.ask("What do you see?")
        assert STAMP.search(page.answer_text())
    finally:
        context.close()


def test_webcam_denied_is_explained_in_the_page(browser, served: ServedApp) -> None:
    context, page = _open_webcam(browser, served, granted=False)
    try:
        message = wait_until(lambda: page.text("#webcam-error"), 15, "the webcam-denied message")
        assert "Webcam unavailable" in message and "allow camera access" in message
        assert page.page.locator("#question textarea").is_enabled()
    finally:
        context.close()
