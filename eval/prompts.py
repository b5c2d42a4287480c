"""The text a question is asked with.

Multiple choice uses one standard template for every benchmark::

    Question: What color is the car?
    Options:
    A. Red
    B. Blue
    Answer with the option's letter from the given choices directly.

Other answer types ask the question as written (OVO-Bench's forward probes and StreamingBench's
proactive polls carry their full instructions in the manifest). ``meta.context`` (StreamingBench's
sequential QA: earlier questions with their answers) is put before the question.
"""

from __future__ import annotations

from eval.manifest import LETTERS, ManifestRecord

MC_INSTRUCTION = "Answer with the option's letter from the given choices directly."


def format_options(options: list[str]) -> str:
    return "\n".join(f"{LETTERS[i]}. {option}" for i, option in enumerate(options))


def build_prompt(record: ManifestRecord) -> str:
    """The user turn for ``record`` (without the video, which is already in memory)."""
    context = record.meta.get("context")
    prefix = f"{context.strip()}\n" if isinstance(context, str) and context.strip() else ""
    if record.answer_type == "mc":
        return f"{prefix}Question: {record.question}\nOptions:\n{format_options(record.options)}\n{MC_INSTRUCTION}"
    return f"{prefix}{record.question}"
