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

To reproduce a paper's protocol exactly, pass its prompts as a JSON file (``eval run --prompts F``)::

    {"videomme": {"mc": "{question}\\n{options}\\nAnswer with the letter only."},
     "*": {"open": "{context}{question} Answer in one sentence."}}

Keys are benchmark names (``*`` for any) mapping answer types (``mc``, ``open``, ``yesno``,
``count``, ``proactive``, or ``*``) to templates with the placeholders ``{question}``, ``{options}``
(``A. ...`` lines), ``{letters}`` (``A, B, C, D``) and ``{context}`` (the earlier turns plus a newline,
or empty). The most specific entry wins; the standard template above fills the gaps. The file and
its hash are recorded in ``run.json``, and a run cannot be resumed with different prompts.
"""

from __future__ import annotations

import hashlib
import json
import string
from dataclasses import dataclass, field
from pathlib import Path

from eval.manifest import ANSWER_TYPES, LETTERS, ManifestRecord
from pipeline.errors import UserInputError

MC_INSTRUCTION = "Answer with the option's letter from the given choices directly."
PLACEHOLDERS = ("question", "options", "letters", "context")


def format_options(options: list[str]) -> str:
    return "\n".join(f"{LETTERS[i]}. {option}" for i, option in enumerate(options))


def _context(record: ManifestRecord) -> str:
    context = record.meta.get("context")
    return f"{context.strip()}\n" if isinstance(context, str) and context.strip() else ""


def build_prompt(record: ManifestRecord, book: PromptBook | None = None) -> str:
    """The user turn for ``record`` (without the video, which is already in memory)."""
    template = book.template_for(record) if book else None
    if template is not None:
        return template.format(question=record.question, options=format_options(record.options),
                               letters=", ".join(record.letters), context=_context(record))
    prefix = _context(record)
    if record.answer_type == "mc":
        return f"{prefix}Question: {record.question}\nOptions:\n{format_options(record.options)}\n{MC_INSTRUCTION}"
    return f"{prefix}{record.question}"


@dataclass(frozen=True)
class PromptBook:
    """User-supplied prompt templates by benchmark and answer type (see the module docstring)."""

    templates: dict[str, dict[str, str]] = field(default_factory=dict)
    source: str | None = None
    sha256: str | None = None

    def template_for(self, record: ManifestRecord) -> str | None:
        for benchmark in (record.benchmark, "*"):
            entry = self.templates.get(benchmark, {})
            for answer_type in (record.answer_type, "*"):
                if answer_type in entry:
                    return entry[answer_type]
        return None

    @classmethod
    def from_file(cls, path: str | Path) -> PromptBook:
        """Load and validate a prompts file; every problem names the file and the entry."""
        path = Path(path)
        try:
            raw = path.read_bytes()
            data = json.loads(raw)
        except FileNotFoundError:
            raise UserInputError(f"prompts file not found: {path}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UserInputError(f"{path} is not valid JSON ({exc}): see `eval/prompts.py` for the format") from None
        if not isinstance(data, dict):
            raise UserInputError(f"{path}: expected an object of benchmark -> {{answer_type: template}}")
        for benchmark, entry in data.items():
            if not isinstance(entry, dict):
                raise UserInputError(f"{path}: {benchmark!r} must map answer types to templates")
            for answer_type, template in entry.items():
                where = f"{path}: [{benchmark!r}][{answer_type!r}]"
                if answer_type not in (*ANSWER_TYPES, "*"):
                    raise UserInputError(f"{where}: answer type must be one of {', '.join(ANSWER_TYPES)} or *")
                if not isinstance(template, str) or "{question}" not in template:
                    raise UserInputError(f"{where}: a template is a string containing {{question}}")
                try:
                    names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
                except ValueError as exc:
                    raise UserInputError(f"{where}: {exc} (write a literal brace as {{{{ or }}}})") from None
                unknown = names - set(PLACEHOLDERS)
                if unknown:
                    raise UserInputError(f"{where}: unknown placeholder(s) {', '.join(sorted(unknown))}; "
                                         f"use {', '.join('{' + p + '}' for p in PLACEHOLDERS)}")
        return cls(data, str(path.resolve()), hashlib.sha256(raw).hexdigest())
