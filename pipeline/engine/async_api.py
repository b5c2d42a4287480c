"""``AsyncVideoQA``: the asyncio front end over the same engine core as :class:`RealtimeVideoQA`.

Example::

    async with AsyncVideoQA.from_pretrained("/tmp/tiny") as engine:
        stream = await engine.watch("rtsp://camera/stream")
        answer = stream.ask("What is happening now?")
        async for piece in answer:
            print(piece.text, end="", flush=True)
        print(answer.info.to_dict())

Leaving the ``async for`` early, or cancelling the task that iterates, cancels the request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from models.protocol import SamplingParams, VideoLM
from pipeline.config import StreamConfig
from pipeline.engine.client import AnswerRequest, RealtimeVideoQA, SourceLike, StreamHandle
from pipeline.engine.core import StepHook
from pipeline.engine.records import AnswerInfo, AnswerPiece
from pipeline.engine.settings import EngineSettings


class AsyncAnswer:
    """Async iterator of :class:`AnswerPiece`; :attr:`info` holds the metadata as it fills in."""

    def __init__(self, request: AnswerRequest) -> None:
        self._request = request

    @property
    def info(self) -> AnswerInfo:
        return self._request.info

    @property
    def done(self) -> bool:
        return self._request.done

    def __aiter__(self) -> AsyncIterator[AnswerPiece]:
        return self._pieces()

    async def _pieces(self) -> AsyncIterator[AnswerPiece]:
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()
        channel = self._request._request.channel
        channel.listen(lambda: loop.call_soon_threadsafe(ready.set))
        ended = False
        try:
            while True:
                event = channel.get_nowait()
                if event is None:
                    await ready.wait()
                    ready.clear()
                    continue
                if event.end:
                    ended = True
                    if event.error is not None:
                        raise event.error
                    return
                assert event.piece is not None
                yield event.piece
        finally:
            if not ended:  # the consumer left early or was cancelled: stop generating
                self.cancel()

    async def result(self) -> AnswerInfo:
        """Wait for the whole answer; returns the metadata (raises the request's error if it failed)."""
        async for _ in self:
            pass
        return self.info

    def cancel(self) -> None:
        """Stop generating (status ``cancelled``)."""
        self._request.cancel()


class AsyncStream:
    """One watched stream, async flavour."""

    def __init__(self, handle: StreamHandle) -> None:
        self._handle = handle

    @property
    def stream_id(self) -> int:
        return self._handle.stream_id

    @property
    def description(self) -> dict[str, Any]:
        return self._handle.description

    def ask(
        self,
        question: str,
        *,
        at: float | None = None,
        mode: str = "covered",
        sampling: SamplingParams | None = None,
        max_wait_s: float | None = None,
    ) -> AsyncAnswer:
        """Queue ``question`` (never blocks); see :meth:`StreamHandle.ask` for the arguments."""
        return AsyncAnswer(self._handle.ask(question, at=at, mode=mode, sampling=sampling, max_wait_s=max_wait_s))

    async def stats(self) -> dict[str, Any]:
        return await asyncio.to_thread(self._handle.stats)

    async def wait_ended(self, timeout: float | None = None) -> bool:
        return await asyncio.to_thread(self._handle.wait_ended, timeout)

    async def close(self) -> None:
        await asyncio.to_thread(self._handle.close)


class AsyncVideoQA:
    """The real-time engine for asyncio code; one worker thread owns the model.

    Args: as :class:`RealtimeVideoQA`.
    """

    def __init__(
        self,
        model: VideoLM,
        config: StreamConfig | None = None,
        settings: EngineSettings | None = None,
        step_hook: StepHook | None = None,
    ) -> None:
        self.sync = RealtimeVideoQA(model, config, settings, step_hook)
        """The synchronous view of the same engine (for threads, e.g. Gradio callbacks)."""

    @classmethod
    def from_pretrained(
        cls,
        model_id_or_path: str | None = None,
        config: StreamConfig | None = None,
        settings: EngineSettings | None = None,
    ) -> AsyncVideoQA:
        """Load a model and start an engine on it (blocking: call before the event loop or in a thread)."""
        sync = RealtimeVideoQA.from_pretrained(model_id_or_path, config, settings)
        engine = cls.__new__(cls)
        engine.sync = sync
        return engine

    async def watch(
        self,
        source: SourceLike,
        *,
        realtime: bool | None = None,
        speed: float | None = None,
        drop_policy: str | None = None,
        config: StreamConfig | None = None,
    ) -> AsyncStream:
        """Start a stream (opening a URL may take a moment: it runs in a thread)."""
        handle = await asyncio.to_thread(
            self.sync.watch, source, realtime=realtime, speed=speed, drop_policy=drop_policy, config=config
        )
        return AsyncStream(handle)

    async def close(self, drain: bool = False) -> None:
        """Cancel (or with ``drain`` finish) every request, stop every source, free all memory."""
        await asyncio.to_thread(self.sync.close, drain)

    async def __aenter__(self) -> AsyncVideoQA:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
