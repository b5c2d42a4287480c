"""``streamvqa eval judge RUN_DIR``: judge every open-ended answer of a run, resumably.

Judgments go to ``RUN_DIR/judgments/<judge slug>.jsonl``, one line per question (appended and
flushed as it goes, like predictions): ``qid``, ``judge``, ``prompt_version``, ``correct``, ``score``,
``raw`` (the judge's reply), ``error``. Running again skips questions already judged by the same judge
(``--retry-errors`` asks again those that ended in an error); a different judge gets its own file, so
judges can be compared on one run.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from eval.judge.backends import Judge, JudgeError
from eval.judge.prompt import PROMPT_VERSION, chat_messages, parse_verdict
from eval.manifest import ManifestRecord, load_manifest
from eval.predictions import PredictionWriter, load_predictions, read_prediction_file
from eval.scoring import SCORERS
from eval.scoring.open_ended import OpenEndedScorer
from eval.scoring.run_scores import manifest_of
from pipeline.errors import UserInputError

logger = logging.getLogger(__name__)

FOLDER = "judgments"


def needs_judge(record: ManifestRecord) -> bool:
    """Open-ended answers: free-form records, and every record of a benchmark scored open-ended officially."""
    return record.answer_type == "open" or SCORERS.get(record.benchmark) is OpenEndedScorer


def judge_slug(judge_id: str) -> str:
    """A file-name-safe form of a judge id."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", judge_id).strip("_")[:120]


def judgment_file(run_dir: Path, judge_id: str) -> Path:
    return run_dir / FOLDER / f"{judge_slug(judge_id)}.jsonl"


def load_judgments(run_dir: str | Path, judge_id: str | None = None) -> tuple[str | None, dict[str, dict[str, Any]]]:
    """``(judge id, qid -> judgment line)`` of one judge (the only one present when ``judge_id`` is None).

    Raises:
        UserInputError: several judges judged this run and none was chosen, or the chosen one has no file.
    """
    folder = Path(run_dir) / FOLDER
    files = sorted(folder.glob("*.jsonl")) if folder.is_dir() else []
    if judge_id is not None:
        path = judgment_file(Path(run_dir), judge_id)
        if not path.is_file():
            raise UserInputError(f"no judgments by {judge_id!r} in {folder}: run `streamvqa eval judge` first")
        files = [path]
    if not files:
        return None, {}
    if len(files) > 1:
        raise UserInputError(f"{folder} holds judgments of {len(files)} judges ({', '.join(f.stem for f in files)}): "
                             "pick one with --judge-id")
    best = _existing(files[0])
    return next((line["judge"] for line in best.values() if line.get("judge")), judge_id), best


@dataclass
class JudgeSummary:
    judge_id: str
    to_judge: int
    already_done: int
    written: int
    errors: int
    unparsed: int
    path: Path


def judge_run(run_dir: str | Path, judge: Judge, manifest: str | Path | None = None, retry_errors: bool = False,
              limit: int | None = None) -> JudgeSummary:
    """Judge the run's open-ended answers that this judge has not judged yet.

    Questions without an answer (missing or failed prediction) are not sent to the judge; the scorer
    counts them wrong. A per-question failure is written as an error line and the stage goes on; a
    judge that cannot answer at all (:class:`~eval.judge.backends.JudgeUnavailable`) stops the stage
    with everything written so far kept.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserInputError(f"run folder not found: {run_dir}")
    records = [r for r in load_manifest(manifest_of(run_dir, manifest)).records if needs_judge(r)]
    predictions = load_predictions(run_dir)
    path = judgment_file(run_dir, judge.judge_id)
    done = {qid for qid, line in _existing(path).items() if not (retry_errors and line.get("error"))}
    answerable = [r for r in records if _response(predictions.get(r.qid)) is not None]
    todo = [r for r in answerable if r.qid not in done]
    summary = JudgeSummary(judge.judge_id, len(answerable), len(answerable) - len(todo), 0, 0, 0, path)
    if limit is not None:
        todo = todo[:limit]
    if not records:
        logger.warning("%s has no open-ended questions: nothing to judge", run_dir)
    with PredictionWriter(path) as writer:
        for record in tqdm(todo, desc=f"judging ({judge.judge_id})", unit="q", disable=not todo):
            line = judge_one(judge, record, _response(predictions[record.qid]) or "")
            writer.write(line)
            summary.written += 1
            summary.errors += bool(line["error"])
            summary.unparsed += line["correct"] is None and not line["error"]
    return summary


def judge_one(judge: Judge, record: ManifestRecord, response: str) -> dict[str, Any]:
    """One judgment line (errors of this question are recorded in the line, not raised)."""
    reference = record.answer_text or record.answer or ""
    line: dict[str, Any] = {"qid": record.qid, "judge": judge.judge_id, "prompt_version": PROMPT_VERSION,
                            "correct": None, "score": None, "raw": None, "error": None}
    try:
        raw = judge.reply(chat_messages(record.question, str(reference), response))
    except JudgeError as exc:
        line["error"] = str(exc)
        return line
    verdict = parse_verdict(raw)
    line.update(raw=raw, correct=verdict.correct, score=verdict.score)
    return line


def _existing(path: Path) -> dict[str, dict[str, Any]]:
    if not path.is_file():
        return {}
    lines: dict[str, dict[str, Any]] = {}
    for line in read_prediction_file(path):
        if line["qid"] not in lines or not line.get("error"):
            lines[line["qid"]] = line
    return lines


def _response(prediction: dict[str, Any] | None) -> str | None:
    if not prediction or prediction.get("error") or not isinstance(prediction.get("response"), str):
        return None
    return prediction["response"]
