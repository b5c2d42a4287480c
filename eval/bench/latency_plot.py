"""PNG plot of ``eval.bench.latency`` results: time to first token vs stream length, per method and run.

Importing this module needs matplotlib (optional); :func:`eval.bench.latency.main` skips the plot
when it is missing.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the headless backend

logger = logging.getLogger(__name__)


def plot(results: dict, out: Path) -> Path:
    """Median TTFT (log scale) vs stream minutes (log scale): streaming and each re-encode baseline."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for run in results["runs"]:
        if not run.get("checkpoints"):
            continue  # a run stopped before its first checkpoint
        label_run = f"{run['parameters_m']}M, {run['frame_size_hw'][0]}x{run['frame_size_hw'][1]}"
        minutes = [c["minutes"] for c in run["checkpoints"]]
        for method in run["checkpoints"][0]["methods"]:
            ttft = [c["methods"][method]["ttft_s_median"] for c in run["checkpoints"]]
            style = "-o" if method == "streaming" else "--s"
            ax.plot(minutes, ttft, style, label=f"{method} ({label_run})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("stream length (minutes at 1 fps)")
    ax.set_ylabel("time to first token (s, median)")
    ax.set_title(f"TTFT vs stream length, CPU, random weights ({results['date']})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    logger.info("wrote %s", out)
    return out


def main() -> None:
    """``python -m eval.bench.latency_plot RESULTS.json OUT.png``: plot saved results again."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("results")
    parser.add_argument("out")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    plot(json.loads(Path(args.results).read_text()), Path(args.out))


if __name__ == "__main__":
    main()
