"""Run a manifest through the streaming pipeline: one session per stream, one prediction line per question.

Questions sharing a ``session_id`` are asked on one :class:`~pipeline.session.StreamSession`, in
ask-time order: ``session.ask(prompt, at=ask_time)`` ingests the video up to ``ask_time`` and
answers from memory (answers never change memory), then the stream continues to the next question.
Questions without an ask time are asked after the whole clip.

Every answer is appended to the run's prediction file and flushed before the next question, so a
killed run loses at most the question in flight; running the same command again skips every qid
already answered (``retry_errors`` also redoes the ones that ended in an error). A video that
cannot be opened, or a question that fails, becomes an error line for the questions concerned and
the run carries on.
"""

from __future__ import annotations

import json
import logging
import resource
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from eval.manifest import ManifestRecord, load_manifest
from eval.predictions import PredictionWriter, load_predictions
from eval.prompts import PromptBook, build_prompt
from eval.scoring import scorer_for
from eval.sessions import SessionPlan, plan_sessions, select_shard
from pipeline.config import StreamConfig
from pipeline.errors import SourceError, UserInputError

logger = logging.getLogger(__name__)


@dataclass
class RunOptions:
    """What to run and where.

    Attributes:
        manifest: the JSONL manifest.
        out: the run folder (created; reused to resume).
        shard: ``(index, count)`` with a 0-based index, or None for every session.
        limit: stop after this many new predictions (None: run to the end).
        retry_errors: ask again the questions whose last prediction is an error.
        prompts: a prompts file (see :mod:`eval.prompts`), or None for the standard templates.
    """

    manifest: Path
    out: Path
    shard: tuple[int, int] | None = None
    limit: int | None = None
    retry_errors: bool = False
    prompts: Path | None = None


@dataclass
class RunSummary:
    """What a run (or one resumed invocation) did."""

    total: int
    already_done: int
    written: int = 0
    errors: int = 0
    skipped_lines: int = 0
    elapsed_s: float = 0.0
    files: list[str] = field(default_factory=list)


@dataclass
class WorkPlan:
    """The sessions still to run and the qids they must answer."""

    sessions: list[SessionPlan]
    todo: set[str]
    total: int
    already_done: int
    skipped_lines: int
    prompts: PromptBook | None = None


def prepare(options: RunOptions, config: StreamConfig, backend: str) -> WorkPlan:
    """Load the manifest, record the run's settings, and work out what is left to do."""
    loaded = load_manifest(options.manifest)
    if not loaded.records:
        raise UserInputError(f"{options.manifest} has no usable question ({loaded.skipped} malformed line(s))")
    book = PromptBook.from_file(options.prompts) if options.prompts else None
    options.out.mkdir(parents=True, exist_ok=True)
    _write_run_info(options, config, backend, loaded.skipped, book)
    sessions = select_shard(plan_sessions(loaded.records), options.shard)
    done = load_predictions(options.out)
    finished = {qid for qid, line in done.items() if not (options.retry_errors and line.get("error"))}
    in_shard = [q.qid for plan in sessions for q in plan.questions]
    todo = {qid for qid in in_shard if qid not in finished}
    sessions = [plan for plan in sessions if any(q.qid in todo for q in plan.questions)]
    return WorkPlan(sessions, todo, len(in_shard), len(in_shard) - len(todo), loaded.skipped, book)


def _write_run_info(options: RunOptions, config: StreamConfig, backend: str, skipped: int,
                    book: PromptBook | None) -> None:
    info_path = options.out / "run.json"
    info: dict[str, Any] = json.loads(info_path.read_text()) if info_path.is_file() else {}
    prompts = {"file": book.source, "sha256": book.sha256, "templates": book.templates} if book else None
    if "prompts" in info and (info["prompts"] or {}).get("sha256") != (prompts or {}).get("sha256"):
        raise UserInputError(
            f"{options.out} was started with prompts {(info['prompts'] or {}).get('file') or '(standard)'}; "
            "resuming with other prompts would mix two protocols in one run: pass the same --prompts, or a new --out")
    info.update(
        prompts=prompts,
        manifest=str(options.manifest.resolve()),
        model=config.model.model,
        config=config.to_dict(),
        backend=backend,
        manifest_lines_skipped=skipped,
    )
    info.setdefault("created", datetime.now(timezone.utc).isoformat(timespec="seconds"))
    info.setdefault("invocations", []).append(
        {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "shard": options.shard,
         "limit": options.limit}
    )
    info_path.write_text(json.dumps(info, indent=2, default=str))


def prediction_file(out: Path, shard: tuple[int, int] | None) -> Path:
    if shard is None:
        return out / "predictions.jsonl"
    return out / f"predictions.shard-{shard[0] + 1}-of-{shard[1]}.jsonl"


def run_local(options: RunOptions, config: StreamConfig) -> RunSummary:
    """Run in this process with one model; returns what was done."""
    from tqdm import tqdm

    from pipeline.videoqa import VideoQA

    started = time.perf_counter()
    work = prepare(options, config, "local")
    summary = RunSummary(work.total, work.already_done, skipped_lines=work.skipped_lines)
    path = prediction_file(options.out, options.shard)
    summary.files.append(str(path))
    if not work.todo or options.limit == 0:
        logger.info("nothing to do: %d of %d question(s) already answered", work.already_done, work.total)
        return summary
    qa = VideoQA.from_pretrained(config=config)
    target = len(work.todo) if options.limit is None else min(options.limit, len(work.todo))
    with PredictionWriter(path) as writer, tqdm(total=target, unit="q", desc="eval", file=sys.stderr,
                                                   dynamic_ncols=True, disable=None) as bar:
        for plan in work.sessions:
            for line in run_session(qa, plan, work.todo, worker="local", prompts=work.prompts):
                writer.write(line)
                summary.written += 1
                summary.errors += bool(line["error"])
                bar.update(1)
                if summary.written >= target:
                    summary.elapsed_s = time.perf_counter() - started
                    return summary
    summary.elapsed_s = time.perf_counter() - started
    return summary


# ------------------------------------------------------------------------------------- one session
def run_session(qa: Any, plan: SessionPlan, todo: set[str], worker: str,
                prompts: PromptBook | None = None) -> Iterator[dict[str, Any]]:
    """Stream ``plan``'s video once and yield a prediction line for each of its questions in ``todo``.

    ``qa`` is a :class:`~pipeline.videoqa.VideoQA`. Never raises for a bad video or question: those
    become lines with ``error`` set.
    """
    questions = [q for q in plan.questions if q.qid in todo]
    if not questions:
        return
    config = qa.config.replace("source", start=plan.clip.start, end=plan.clip.end)
    try:
        session = qa.session(config)
        session.watch(plan.video.path)
    except Exception as error:  # noqa: BLE001 - any failure to open becomes error lines, the run goes on
        message = f"cannot open the video {plan.video.path}: {error}"
        logger.warning("session %s: %s", plan.session_id, message)
        for question in questions:
            yield _line(question, qa, worker, error=message)
        return
    with session:
        for question in questions:
            yield _answer(session, question, qa, worker, prompts)


def _answer(session: Any, question: ManifestRecord, qa: Any, worker: str,
            prompts: PromptBook | None = None) -> dict[str, Any]:
    started = time.perf_counter()
    _reset_peak_memory()
    try:
        if question.answer_type == "proactive":
            answer, extra = _poll(session, question)
        else:
            if question.ask_time is None:
                _ingest_to_end(session)
            answer, extra = session.ask(build_prompt(question, prompts), at=question.ask_time), {}
    except UserInputError as error:
        return _line(question, qa, worker, error=str(error), latency_s=time.perf_counter() - started)
    except Exception as error:  # noqa: BLE001 - one failed question must not stop the run
        logger.exception("question %s failed", question.qid)
        return _line(question, qa, worker, error=f"{type(error).__name__}: {error}",
                     latency_s=time.perf_counter() - started)
    latency = time.perf_counter() - started
    counters = session.counters
    return _line(
        question, qa, worker,
        response=answer.answer,
        frames_used=answer.frames_ingested,
        frames_covered=list(answer.frames_covered) if answer.frames_covered else None,
        question_time=answer.question_time,
        latency_s=latency,
        ttft_s=answer.timing.get("ttft_s"),
        catch_up_s=answer.timing.get("catch_up_s"),
        num_tokens=answer.num_tokens,
        kv_bytes=answer.memory.get("device_bytes"),
        ingest_frames=counters.frames_ingested,
        ingest_s=round(counters.encode_s + counters.prefill_s, 6),
        source_end_reason=session.source_end_reason,
        **_peak_memory(),
        **extra,
    )


def _ingest_to_end(session: Any) -> None:
    try:
        session.ingest()
    except SourceError as error:  # answer from the frames read before the failure
        logger.warning("source failed; answering from the frames read so far: %s", error)


def _poll(session: Any, question: ManifestRecord) -> tuple[Any, dict[str, Any]]:
    """StreamingBench proactive output: ask the yes/no poll every ``poll_interval`` s; on the first yes,
    ask the question itself at that time."""
    meta = question.meta
    start = float(meta.get("poll_start", question.ask_time or 0.0))
    end = float(meta.get("poll_end", start))
    step = float(meta.get("poll_interval", 1.0))
    poll_prompt = str(meta.get("poll_prompt") or question.question)
    t, polls, answer = start, 0, None
    while t <= end + 1e-9:
        answer = session.ask(poll_prompt, at=t)
        polls += 1
        if "yes" in answer.answer.strip().lower():
            final = session.ask(build_prompt(question), at=t)
            return final, {"response_time": t, "triggered": True, "polls": polls}
        t += step
    if answer is None:
        answer = session.ask(poll_prompt, at=start)
        polls, t = 1, start + step
    return answer, {"response_time": t - step, "triggered": False, "polls": polls}


def _line(question: ManifestRecord, qa: Any, worker: str, error: str | None = None,
          response: str | None = None, **fields: Any) -> dict[str, Any]:
    extracted, parsed = scorer_for(question.benchmark).extract(question, response) if response is not None else (
        None, False)
    line: dict[str, Any] = {
        "qid": question.qid,
        "benchmark": question.benchmark,
        "session_id": question.session_id,
        "video_id": question.video.id,
        "task_type": question.task_type,
        "ask_time": question.ask_time,
        "response": response,
        "extracted": extracted,
        "parsed": bool(parsed),
        "error": error,
        "model": qa.config.model.model,
        "worker": worker,
        "finished_at": round(time.time(), 3),
    }
    for key, value in fields.items():
        line[key] = round(value, 6) if isinstance(value, float) else value
    return line


def _reset_peak_memory() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
    except Exception:  # noqa: BLE001 - memory accounting is best effort
        pass


def _peak_memory() -> dict[str, Any]:
    """Peak GPU memory allocated during the question (CUDA), else the process's peak resident set."""
    try:
        import torch

        if torch.cuda.is_available():
            return {"peak_memory_bytes": int(torch.cuda.max_memory_allocated()), "peak_memory_kind": "cuda_allocated"}
    except Exception:  # noqa: BLE001
        pass
    return {"peak_memory_bytes": int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024,
            "peak_memory_kind": "process_max_rss"}
