"""The synchronous front end: load a model once, open sessions on streams, ask questions."""

from __future__ import annotations

import logging
import os

from models.protocol import VideoLM
from models.registry import load_model
from pipeline.answer import Answer
from pipeline.config import StreamConfig
from pipeline.session import StreamSession
from pipeline.sources import FrameSource

logger = logging.getLogger(__name__)


class VideoQA:
    """A loaded model plus the configuration its sessions start from.

    Example::

        qa = VideoQA.from_pretrained("/tmp/tiny")          # or a hub id
        with qa.session() as session:
            session.watch("clip.mp4")
            print(session.ask("What happens?", at=12.0).answer)
    """

    def __init__(self, model: VideoLM, config: StreamConfig | None = None) -> None:
        self.model = model
        self.config = config or StreamConfig()

    @classmethod
    def from_pretrained(cls, model_id_or_path: str | None = None, config: StreamConfig | None = None) -> VideoQA:
        """Load ``model_id_or_path`` (default: ``config.model.model``) as described by ``config``."""
        config = config or StreamConfig()
        if model_id_or_path is not None:
            config = config.replace("model", model=model_id_or_path)
        mc = config.model
        model = load_model(
            mc.model,
            device=mc.device,
            dtype=mc.dtype,
            attn_implementation=mc.attn_implementation,
            max_frame_pixels=mc.max_frame_pixels,
            local_files_only=mc.local_files_only,
        )
        return cls(model, config)

    def session(self, config: StreamConfig | None = None) -> StreamSession:
        """A new stream with its own memory (``config`` overrides this object's, model section aside)."""
        return StreamSession(self.model, config or self.config)

    def resume(self, folder: str | os.PathLike[str], config: StreamConfig | None = None) -> StreamSession:
        """A session that continues the stream saved in ``folder`` by :meth:`StreamSession.save`.

        ``config`` (None: the saved configuration) may change the ``source`` and ``sampling`` sections;
        ``memory``, ``ingest`` and ``question`` must be as saved. Raises
        :class:`~pipeline.errors.SessionFileError` for a folder of another model or format version, or a
        missing, truncated or corrupted file, naming the file and what to do.
        """
        from pipeline.persist import load_session

        return load_session(self.model, folder, config)

    def ask(self, video: str | int | FrameSource, question: str, at: float | None = None) -> Answer:
        """One question about one video: watch it up to ``at`` (None: to the end) and answer."""
        with self.session() as session:
            session.watch(video)
            session.ingest(until=at)
            return session.ask(question, at=at)
