"""Group manifest questions into streaming sessions and split them into deterministic shards.

A session is one pass over one video (clip): its questions are asked in ask-time order (questions
without an ask time, i.e. "after the whole clip", last; ties keep ``turn_idx`` then manifest order).
Sharding is by session, with a stable hash of ``session_id``, so every process of a multi-machine
run agrees on who does what without talking to the others.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from eval.manifest import Clip, ManifestRecord, Video
from pipeline.errors import UserInputError


@dataclass
class SessionPlan:
    """One stream and its questions, in the order they are asked."""

    session_id: str
    video: Video
    clip: Clip
    questions: list[ManifestRecord] = field(default_factory=list)

    @property
    def length_s(self) -> float:
        """Best guess of the streamed length (for longest-first scheduling)."""
        times = [q.ask_time for q in self.questions if q.ask_time is not None]
        known = [t for t in [self.video.duration, *times] if t is not None]
        return max(known) if known else 0.0


def _order(record: ManifestRecord) -> tuple[float, int]:
    return (math.inf if record.ask_time is None else record.ask_time, record.turn_idx)


def plan_sessions(records: Iterable[ManifestRecord]) -> list[SessionPlan]:
    """Sessions in order of first appearance, each with its questions sorted by ask time."""
    plans: dict[str, SessionPlan] = {}
    for record in records:
        plan = plans.get(record.session_id)
        if plan is None:
            plan = plans[record.session_id] = SessionPlan(record.session_id, record.video, record.clip)
        elif record.video.path != plan.video.path or record.clip != plan.clip:
            raise UserInputError(
                f"question {record.qid} is in session {record.session_id!r} but names another video or clip "
                f"({record.video.path} {record.clip}) than its first question ({plan.video.path} {plan.clip}): "
                "give it its own session_id"
            )
        plan.questions.append(record)
    for plan in plans.values():
        plan.questions.sort(key=_order)  # stable: manifest order breaks ties
    return list(plans.values())


def shard_of(session_id: str, num_shards: int) -> int:
    """The shard (0-based) that runs ``session_id``: a stable hash, the same on every machine."""
    digest = hashlib.sha1(session_id.encode("utf-8")).hexdigest()
    return int(digest, 16) % num_shards


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/N"`` (1-based i) -> ``(i - 1, N)``."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise UserInputError(f"--shard {text!r} is not i/N with 1 <= i <= N: pass e.g. --shard 1/4")
    return int(match.group(1)) - 1, int(match.group(2))


def select_shard(plans: list[SessionPlan], shard: tuple[int, int] | None) -> list[SessionPlan]:
    if shard is None:
        return plans
    index, count = shard
    return [plan for plan in plans if shard_of(plan.session_id, count) == index]
