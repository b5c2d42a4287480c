"""``--backend ray``: sessions on a pool of Ray actors, one model per actor.

Each actor loads the model once (one GPU per actor when the cluster has GPUs) and runs whole
sessions with :func:`eval.runner.run_session`. Sessions are handed out longest first, so the long
videos do not end up last on one worker. Actors return their prediction lines to the driver, which
appends them to one file per worker (``predictions.ray-w<k>.jsonl``, flushed per session) and folds
those into ``predictions.jsonl`` at the end; resuming reads every file, so a killed run loses at
most the sessions in flight. The same code runs on a multi-node cluster: pass its address (or set
``RAY_ADDRESS``); actors only need the package importable and the video paths readable.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from eval.predictions import PredictionWriter, merge_files
from eval.prompts import PromptBook
from eval.runner import RunOptions, RunSummary, prepare, run_session
from eval.sessions import SessionPlan
from pipeline.config import StreamConfig
from pipeline.errors import UserInputError

logger = logging.getLogger(__name__)

PACKAGE_ROOT = str(Path(__file__).resolve().parents[1])


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UserInputError("--backend ray needs Ray: pip install 'streamvqa[ray]' (or use --backend local)") from None
    return ray


class EvalWorker:
    """One model, many sessions (wrapped by ``ray.remote`` in :func:`run_ray`)."""

    def __init__(self, config: StreamConfig, name: str) -> None:
        from pipeline.videoqa import VideoQA

        logging.basicConfig(level=logging.WARNING)
        self.name = name
        self.qa = VideoQA.from_pretrained(config=config)

    def run(self, plan: SessionPlan, todo: set[str], prompts: PromptBook | None = None
            ) -> tuple[str, list[dict[str, Any]]]:
        return self.name, list(run_session(self.qa, plan, todo, worker=self.name, prompts=prompts))


def _todo_of(plan: SessionPlan, todo: set[str]) -> set[str]:
    """The qids of ``plan`` still to answer (only these travel to the actor)."""
    return {question.qid for question in plan.questions if question.qid in todo}


def _start(ray: Any, address: str | None, num_cpus: int | None) -> bool:
    """Connect to (or start) a cluster; returns True when this call started it."""
    if ray.is_initialized():
        return False
    python_path = os.pathsep.join(p for p in (PACKAGE_ROOT, os.environ.get("PYTHONPATH", "")) if p)
    env_vars = {"PYTHONPATH": python_path, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "0")}
    ray.init(address=address or os.environ.get("RAY_ADDRESS") or None, num_cpus=num_cpus if not address else None,
             include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env_vars})
    return True


def run_ray(options: RunOptions, config: StreamConfig, workers: int | None = None, address: str | None = None,
            num_cpus: int | None = None) -> RunSummary:
    """Run the manifest on ``workers`` Ray actors (default: one per GPU, else 2)."""
    from tqdm import tqdm

    ray = _import_ray()
    started = time.perf_counter()
    work = prepare(options, config, "ray")
    summary = RunSummary(work.total, work.already_done, skipped_lines=work.skipped_lines)
    if not work.todo or options.limit == 0:
        return summary
    owns_cluster = _start(ray, address, num_cpus)
    try:
        gpus = int(ray.cluster_resources().get("GPU", 0))
        count = workers or gpus or 2
        per_actor = {"num_gpus": 1, "num_cpus": 1} if gpus else {"num_cpus": 1}
        remote_worker = ray.remote(**per_actor)(EvalWorker)
        actors = [remote_worker.remote(config, f"w{k}") for k in range(count)]
        sessions = sorted(work.sessions, key=lambda plan: plan.length_s, reverse=True)
        writers: dict[str, PredictionWriter] = {}
        target = len(work.todo) if options.limit is None else min(options.limit, len(work.todo))
        pool = ray.util.ActorPool(actors)
        try:
            with tqdm(total=target, unit="q", desc="eval (ray)", file=sys.stderr, disable=None) as bar:
                submit = lambda actor, plan: actor.run.remote(plan, _todo_of(plan, work.todo), work.prompts)  # noqa: E731
                jobs = pool.map_unordered(submit, sessions)
                for name, lines in jobs:
                    writer = writers.get(name)
                    if writer is None:
                        writer = writers[name] = PredictionWriter(options.out / f"predictions.ray-{name}.jsonl")
                    for line in lines:
                        writer.write(line)
                        summary.written += 1
                        summary.errors += bool(line["error"])
                    bar.update(len(lines))
                    if summary.written >= target:
                        break
        finally:
            for writer in writers.values():
                writer.close()
            for actor in actors:
                ray.kill(actor)
        merged = merge_files(options.out, [w.path for w in writers.values()])
        summary.files.append(str(merged))
    finally:
        if owns_cluster:
            ray.shutdown()
    summary.elapsed_s = time.perf_counter() - started
    return summary
