"""``streamvqa eval report RUN_DIR``: ``report.md`` (tables) and PNG plots from ``scores.json``.

Plots (``RUN_DIR/plots/``): accuracy per task (one bar chart per benchmark), accuracy vs haystack
length x needle depth (heatmap, needle runs), accuracy vs ask delay (needle runs) and efficiency
(latency and time to first token per question, ingest throughput and peak memory).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from eval.scoring.run_scores import score_run
from pipeline.errors import UserInputError

logger = logging.getLogger(__name__)


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise UserInputError("plots need matplotlib: pip install 'streamvqa[eval]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _pct(value: float | None) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f}"


def _mib(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value / 2**20:.1f} MiB" if value >= 2**20 else f"{value / 2**10:.1f} KiB"


def make_report(run_dir: str | Path, rescore: bool = False, n_boot: int = 1000) -> Path:
    """Write ``report.md`` and ``plots/*.png`` in ``run_dir``; returns the report's path."""
    run_dir = Path(run_dir)
    scores_path = run_dir / "scores.json"
    scores = score_run(run_dir, n_boot=n_boot) if rescore or not scores_path.is_file() else json.loads(
        scores_path.read_text())
    plots = run_dir / "plots"
    plots.mkdir(exist_ok=True)
    images = plot_all(scores, plots)
    lines = [f"# Evaluation report: {run_dir.name}", ""]
    info = run_dir / "run.json"
    if info.is_file():
        run = json.loads(info.read_text())
        lines += [f"Model `{run.get('model')}`, backend {run.get('backend')}, manifest `{run.get('manifest')}`.", ""]
    lines += [f"{scores['predictions'] - scores['errors']} of {scores['questions']} questions answered, "
              f"{scores['errors']} more ended in an error. "
              f"Intervals: 95% bootstrap over videos ({scores['bootstrap']['replicates']} replicates).", ""]
    lines += _summary_table(scores)
    for name, bench in scores["benchmarks"].items():
        lines += _benchmark_section(name, bench)
    lines += _judged_section(scores.get("judged") or {})
    lines += _efficiency_section(scores["efficiency"])
    if images:
        lines += ["## Plots", ""] + [f"![{image.stem}](plots/{image.name})" for image in images] + [""]
    report = run_dir / "report.md"
    report.write_text("\n".join(lines))
    return report


def _summary_table(scores: dict[str, Any]) -> list[str]:
    lines = ["| benchmark | metric | score (%) | 95% CI | strict (%) | parse fail (%) | strict parse fail (%) | n |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, bench in scores["benchmarks"].items():
        metric = next(iter(bench["metrics"]))
        low, high = bench["intervals"][metric]
        lines.append(
            f"| {name} | {metric} | {_pct(bench['metrics'][metric])} | {_pct(low)}-{_pct(high)} | "
            f"{_pct(bench['strict_accuracy'])} | {_pct(bench['parse_failure_rate'])} | "
            f"{_pct(bench['strict_parse_failure_rate'])} | {bench['questions']} |"
        )
    return lines + [""]


def _benchmark_section(name: str, bench: dict[str, Any]) -> list[str]:
    lines = [f"## {name}", "", f"Scorer `{bench['scorer']}`; {bench['answered']} of {bench['questions']} answered, "
             f"{bench['included']} counted by the official rule.", ""]
    lines += ["| metric | score (%) | 95% CI |", "| --- | --- | --- |"]
    for metric, value in bench["metrics"].items():
        low, high = bench["intervals"][metric]
        lines.append(f"| {metric} | {_pct(value)} | {_pct(low)}-{_pct(high)} |")
    lines.append("")
    for grouping, groups in bench["breakdowns"].items():
        if len(groups) < 2 and grouping != "task_type":
            continue
        lines += [f"**by {grouping}**", "", "| group | accuracy (%) | n |", "| --- | --- | --- |"]
        lines += [f"| {key} | {_pct(value['accuracy'])} | {value['n']} |" for key, value in groups.items()]
        lines.append("")
    lines += [f"> {note}" for note in bench["notes"]] + ([""] if bench["notes"] else [])
    return lines


def _judged_section(judged: dict[str, Any]) -> list[str]:
    if not judged:
        return []
    lines = ["## LLM judge (open-ended answers)", "",
             "Unanswered questions, failed judgments and unreadable verdicts count as wrong with score 0.", "",
             "| benchmark | judge | accuracy (%) | 95% CI | score (0-5) | judged | unreadable | not judged "
             "| unanswered |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, entry in judged.items():
        low, high = entry["intervals"]["judge_accuracy"]
        lines.append(f"| {name} | `{entry['judge']}` | {_pct(entry['metrics']['judge_accuracy'])} | {_pct(low)}-"
                     f"{_pct(high)} | {entry['metrics']['judge_score']:.2f} | {entry['judged']} | {entry['unparsed']} "
                     f"| {entry['judge_errors']} | {entry['unanswered']} |")
    return lines + [""]


def _efficiency_section(eff: dict[str, Any]) -> list[str]:
    def q(stat: dict[str, float] | None) -> str:
        return "n/a" if not stat else f"{stat['median']:.3f} / {stat['p90']:.3f} / {stat['max']:.3f}"

    fps = eff.get("ingest_frames_per_s")
    return ["## Efficiency", "", "| measure | value |", "| --- | --- |",
            f"| answered questions | {eff['answered']} |",
            f"| latency s (median / p90 / max) | {q(eff['latency_s'])} |",
            f"| time to first token s (median / p90 / max) | {q(eff['ttft_s'])} |",
            f"| catch-up ingest before answering s (median / p90 / max) | {q(eff['catch_up_s'])} |",
            f"| ingest throughput (frames/s, encode + prefill) | {'n/a' if fps is None else f'{fps:.1f}'} |",
            f"| peak memory ({eff.get('peak_memory_kind') or 'n/a'}) | {_mib(eff.get('peak_memory_bytes'))} |",
            f"| largest KV memory at a question | {_mib(eff.get('kv_bytes_max'))} |", ""]


# --------------------------------------------------------------------------------------------- plots
def plot_all(scores: dict[str, Any], folder: Path) -> list[Path]:
    plt = _pyplot()
    images = []
    for name, bench in scores["benchmarks"].items():
        groups = bench["breakdowns"].get("task_type") or {}
        if groups:
            images.append(_bar(plt, groups, f"{name}: accuracy per task", folder / f"accuracy_per_task_{name}.png"))
        if name == "needle":
            images += _needle_plots(plt, bench["breakdowns"], folder)
    images.append(_efficiency(plt, scores, folder / "efficiency.png"))
    return [image for image in images if image is not None]


def _bar(plt: Any, groups: dict[str, dict[str, float]], title: str, path: Path) -> Path:
    names = list(groups)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.6 * len(names) + 2), 3.5))
    ax.bar(range(len(names)), [100 * groups[n]["accuracy"] for n in names], color="#4878cf")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _needle_plots(plt: Any, breakdowns: dict[str, Any], folder: Path) -> list[Path]:
    images = []
    cells = breakdowns.get("minutes_x_depth") or {}
    if cells:
        minutes = sorted({float(k.split("|")[0]) for k in cells})
        depths = sorted({float(k.split("|")[1]) for k in cells})
        grid = [[100 * cells.get(f"{m:g}|{d:g}", cells.get(f"{m}|{d}", {"accuracy": float("nan")}))["accuracy"]
                 for d in depths] for m in minutes]
        fig, ax = plt.subplots(figsize=(1.2 * len(depths) + 2.5, 0.7 * len(minutes) + 2))
        image = ax.imshow(grid, vmin=0, vmax=100, cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(depths)), [f"{d:g}" for d in depths])
        ax.set_yticks(range(len(minutes)), [f"{m:g}" for m in minutes])
        ax.set_xlabel("needle depth")
        ax.set_ylabel("haystack (minutes)")
        ax.set_title("needle accuracy (%)")
        fig.colorbar(image, ax=ax)
        fig.tight_layout()
        path = folder / "accuracy_length_x_depth.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        images.append(path)
    delays = {k: v for k, v in (breakdowns.get("delay") or {}).items() if k != "None"}
    if delays:
        keys = sorted(delays, key=float)
        fig, ax = plt.subplots(figsize=(4.5, 3.2))
        ax.plot([float(k) for k in keys], [100 * delays[k]["accuracy"] for k in keys], marker="o")
        ax.set_xlabel("ask delay after the needle (s)")
        ax.set_ylabel("accuracy (%)")
        ax.set_ylim(0, 100)
        ax.set_title("streaming questions: accuracy vs delay")
        fig.tight_layout()
        path = folder / "accuracy_vs_delay.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        images.append(path)
    return images


def _efficiency(plt: Any, scores: dict[str, Any], path: Path) -> Path | None:
    rows = [row for row in scores.get("per_question", []) if row.get("latency_s") is not None and not row["error"]]
    if not rows:
        return None
    eff = scores["efficiency"]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.3))
    axes[0].hist([row["latency_s"] for row in rows], bins=20, color="#6acc65")
    axes[0].set_xlabel("latency per question (s)")
    axes[0].set_ylabel("questions")
    labels, values = [], []
    if eff.get("ingest_frames_per_s"):
        labels.append("ingest frames/s")
        values.append(eff["ingest_frames_per_s"])
    if eff.get("ttft_s"):
        labels.append("median TTFT (ms)")
        values.append(1000 * eff["ttft_s"]["median"])
    if eff.get("peak_memory_bytes"):
        labels.append("peak memory (MiB)")
        values.append(eff["peak_memory_bytes"] / 2**20)
    axes[1].barh(labels, values, color="#d65f5f")
    for y, value in enumerate(values):
        axes[1].text(value, y, f" {value:.1f}", va="center", fontsize=8)
    axes[1].set_title("efficiency")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
