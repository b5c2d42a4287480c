"""Gradio web demo: watch a video, a webcam or a stream URL and ask questions while it plays.

    python app.py [--model M] [--policy P] [--budget-tokens N] [--host 127.0.0.1] [--port 7860]

A thin client of the pipeline API: the page shows what :mod:`pipeline.demo` and the engine report.
Each browser tab has its own stream and memory (``pipeline.demo.registry``); closing the tab releases
them; Gradio's queue bounds how many answers run at once.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator
from typing import Any

import gradio as gr

from memory.policies import POLICIES
from pipeline.config import StreamConfig
from pipeline.demo.registry import SessionRegistry
from pipeline.demo.stream import DemoEngine, DemoStream, model_banner
from pipeline.errors import StreamVQAError, UserInputError

logger = logging.getLogger("streamvqa.app")

CSS = """
#status.error, #webcam-error { color: #b00020; font-weight: 600; }
"""

# The browser, not the server, knows when camera access fails: say so in the page.
WEBCAM_JS = """
() => {
    const media = navigator.mediaDevices;
    if (!media || !media.getUserMedia) return;
    const original = media.getUserMedia.bind(media);
    media.getUserMedia = async (constraints) => {
        try {
            return await original(constraints);
        } catch (error) {
            const box = document.querySelector('#webcam-error');
            if (box) box.textContent = `Webcam unavailable (${error.name}): allow camera access for this page `
                + 'in the browser settings, or use Upload or Stream URL instead.';
            throw error;
        }
    };
}
"""

LAUNCH_OPTIONS = {"css": CSS, "js": WEBCAM_JS}
"""Options of ``Blocks.launch`` that belong to the page (tests launch with them too)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="hub id or local folder (default: the config's model)")
    parser.add_argument("--config", default=None, help="JSON config file (defaults, then file, then flags)")
    parser.add_argument("--policy", default=None, help="default memory policy (the page lets each user change it)")
    parser.add_argument("--budget-tokens", type=int, default=None, help="default long-term budget per layer/head")
    parser.add_argument("--window-frames", type=int, default=None, help="frames in the short-term window")
    parser.add_argument("--fps", type=float, default=None, help="frames sampled per second of video")
    parser.add_argument("--chunks-per-forward", type=int, default=1, help="chunks per forward call (latency)")
    parser.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:1 ...")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=int, default=7860, help="port to listen on")
    parser.add_argument("--max-streams", type=int, default=4, help="browser sessions with a stream at once")
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace) -> StreamConfig:
    config = StreamConfig.from_file(args.config) if args.config else StreamConfig()
    config = config.replace("model", model=args.model, device=args.device)
    config = config.replace("memory", policy=args.policy, budget_tokens=args.budget_tokens,
                            window_frames=args.window_frames)  # fmt: skip
    # one chunk per forward call: memory and answers follow the video closely (throughput matters less here)
    config = config.replace("ingest", chunks_per_forward=args.chunks_per_forward)
    return config.replace("source", fps=args.fps)


def build_app(engine: DemoEngine, max_streams: int = 4) -> gr.Blocks:
    """The page: inputs and controls on the left, chat and memory on the right."""
    registry: SessionRegistry[DemoStream] = SessionRegistry(max_streams)
    defaults = engine.config.memory

    def stream_of(request: gr.Request) -> DemoStream | None:
        return registry.get(request.session_hash)

    def start(spec: Any, kind: str, policy: str, budget: float | None, request: gr.Request) -> tuple[str, list]:
        """Open a new stream for this tab (closing its previous one) and start ingesting."""
        if spec in (None, ""):
            return _status("Choose a video, a stream URL or the webcam first."), []
        try:
            budget_tokens = None if budget is None else int(budget)
            registry.open(request.session_hash, lambda: engine.open_stream(spec, kind, policy, budget_tokens))
        except UserInputError as error:
            logger.info("could not start %s %r: %s", kind, spec, error)
            return _status(str(error), error=True), []
        return _status(f"Watching {kind}: ingesting frames. Ask a question at any moment."), []

    def start_upload(path: str | None, policy: str, budget: float | None, request: gr.Request) -> tuple[str, list]:
        return start(path, "upload", policy, budget, request)

    def start_url(url: str, policy: str, budget: float | None, request: gr.Request) -> tuple[str, list]:
        return start((url or "").strip(), "url", policy, budget, request)

    def webcam_frame(frame: Any, policy: str, budget: float | None, request: gr.Request) -> Any:
        """Hand a browser webcam frame to this tab's stream, starting a webcam stream on the first one."""
        if frame is None:
            return gr.update()
        stream = stream_of(request)
        message = gr.update()
        if stream is None or stream.kind != "webcam":
            message, _ = start("webcam", "webcam", policy, budget, request)
            stream = stream_of(request)
        if stream is not None:
            stream.push(frame)
        return message

    def toggle_pause(request: gr.Request) -> tuple[str, str]:
        stream = stream_of(request)
        if stream is None:
            return gr.update(), _status("Nothing to pause: start a video first.")
        stream.set_paused(not stream.paused)
        label = "Resume ingest" if stream.paused else "Pause ingest"
        return gr.update(value=label), _status("Ingest paused." if stream.paused else "Ingest resumed.")

    def reset(request: gr.Request) -> tuple[str, list, None, str, None]:
        registry.release(request.session_hash)
        return _status("Session reset: memory released. Choose a source to start again."), [], None, "", None

    def ask(question: str, history: list, request: gr.Request) -> Iterator[tuple[list, str, str]]:
        """Stream the answer into the chat, stamped with the video time it covers, then its evidence."""
        history = list(history or [])
        stream = stream_of(request)
        if stream is None:
            yield history, question, _status("Start a video, a stream URL or the webcam before asking.", error=True)
            return
        if not (question or "").strip():
            yield history, question, _status("Type a question first.", error=True)
            return
        history.append({"role": "user", "content": question})
        history.append({"role": "assistant", "content": "…"})
        yield history, "", gr.update()
        try:
            for update in stream.ask(question):
                history[-1] = {"role": "assistant", "content": update.markdown()}
                yield history, "", gr.update()
        except StreamVQAError as error:  # bad question, stream closed or failed, answer cancelled
            history[-1] = {"role": "assistant", "content": f"⚠️ {error}"}
            yield history, "", _status(str(error), error=True)
            return
        evidence = stream.evidence()
        if evidence:
            gallery = gr.Gallery(
                value=[(e.image, e.caption) for e in evidence], columns=min(len(evidence), 6), height=150,
                label=stream.evidence_label, elem_classes=["evidence"], allow_preview=False, buttons=[],
            )  # fmt: skip
            history.append({"role": "assistant", "content": gallery})
        yield history, "", gr.update()

    def refresh(request: gr.Request) -> tuple[Any, str, Any, str]:
        """Live view: latest frame, memory numbers and plot, stream status."""
        stream = stream_of(request)
        if stream is None:
            return gr.update(), "No stream yet.", gr.update(), gr.update()
        snapshot = stream.refresh()
        status = gr.update()
        if snapshot.error:
            status = _status(snapshot.error, error=True)
        return snapshot.frame, snapshot.markdown, snapshot.figure, status

    def release(request: gr.Request) -> None:
        registry.release(request.session_hash)

    with gr.Blocks(title="streamvqa demo") as demo:
        gr.Markdown(f"# streamvqa: ask about a video while it plays\n{model_banner(engine)}", elem_id="banner")
        with gr.Row():
            with gr.Column(scale=4):
                with gr.Tabs():
                    with gr.Tab("Upload", id="upload"):
                        video = gr.Video(label="Video file", sources=["upload"], autoplay=True, elem_id="upload-video")
                    with gr.Tab("Stream URL", id="url"):
                        url = gr.Textbox(label="Stream URL", placeholder="rtsp://… http://… udp://…", elem_id="url")
                        connect = gr.Button("Connect", elem_id="connect")
                    with gr.Tab("Webcam", id="webcam"):
                        webcam = gr.Image(label="Webcam", sources=["webcam"], streaming=True, type="numpy",
                                          elem_id="webcam")  # fmt: skip
                        gr.HTML("<div id='webcam-error'></div>")
                with gr.Accordion("Memory settings (apply when a stream starts)", open=False):
                    policy = gr.Dropdown(list(POLICIES), value=defaults.policy, label="Policy (a+b wraps b in a)",
                                         allow_custom_value=True, elem_id="policy")  # fmt: skip
                    budget = gr.Number(defaults.budget_tokens, label="Long-term budget (tokens per layer and head)",
                                       precision=0, minimum=0, elem_id="budget")  # fmt: skip
                with gr.Row():
                    pause = gr.Button("Pause ingest", elem_id="pause")
                    reset_button = gr.Button("Reset session", variant="stop", elem_id="reset")
                status = gr.Markdown("Choose a source to start.", elem_id="status")
                live = gr.Image(label="Now in memory (latest ingested frame)", interactive=False, height=200,
                                elem_id="live-frame")  # fmt: skip
            with gr.Column(scale=5):
                chat = gr.Chatbot(label="Questions and answers", height=520, elem_id="chat")
                with gr.Row():
                    question = gr.Textbox(placeholder="Ask about the video…", show_label=False, scale=5,
                                          elem_id="question")  # fmt: skip
                    ask_button = gr.Button("Ask", variant="primary", scale=1, elem_id="ask")
                memory = gr.Markdown("No stream yet.", elem_id="memory-stats")
                plot = gr.Plot(label="Memory over time", elem_id="memory-plot")

        settings = [policy, budget]
        video.upload(start_upload, [video, *settings], [status, chat], concurrency_limit=None)
        connect.click(start_url, [url, *settings], [status, chat], concurrency_limit=None)
        url.submit(start_url, [url, *settings], [status, chat], concurrency_limit=None)
        webcam.stream(webcam_frame, [webcam, *settings], [status], stream_every=0.5, concurrency_limit=None,
                      show_progress="hidden")  # fmt: skip
        pause.click(toggle_pause, None, [pause, status], concurrency_limit=None)
        reset_button.click(reset, None, [status, chat, live, memory, plot], concurrency_limit=None)
        for trigger in (ask_button.click, question.submit):
            trigger(ask, [question, chat], [chat, question, status], concurrency_id="answers")
        gr.Timer(1.0).tick(refresh, None, [live, memory, plot, status], concurrency_limit=None,
                           show_progress="hidden")  # fmt: skip
        demo.unload(release)
    demo.queue(default_concurrency_limit=max_streams, max_size=64)
    demo.registry = registry  # for tests and shutdown
    return demo


def _status(text: str, error: bool = False) -> dict[str, Any]:
    """A status-line update; errors are styled so nobody mistakes them for progress."""
    return gr.update(value=f"**Error:** {text}" if error else text, elem_classes=["error"] if error else [])


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        engine = DemoEngine.start(build_config(args))
    except UserInputError as error:
        logger.error("%s", error)
        return 2
    demo = build_app(engine, args.max_streams)
    try:
        demo.launch(server_name=args.host, server_port=args.port, **LAUNCH_OPTIONS)
    finally:
        demo.registry.close_all()
        engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
