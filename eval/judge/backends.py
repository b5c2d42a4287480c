"""Judge backends: a local Hugging Face chat model, or any OpenAI-compatible chat-completions endpoint.

Both take OpenAI-style messages and return the reply text, greedy (temperature 0) so a judgment is
reproducible, and expose ``judge_id``, the string recorded in every judgment line and in scores.json.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
from typing import Protocol

import torch

from pipeline.errors import UserInputError

logger = logging.getLogger(__name__)


class JudgeError(RuntimeError):
    """One request failed (a bad reply, an HTTP error for this question); the stage records it and goes on."""


class JudgeUnavailable(UserInputError):
    """The judge cannot answer at all (dead endpoint, missing checkpoint): the stage stops, keeping what it wrote."""


class Judge(Protocol):
    judge_id: str

    def reply(self, messages: list[dict[str, str]]) -> str:
        """The judge's reply to one conversation."""
        ...


class HFChatJudge:
    """A local causal-LM chat checkpoint (hub id or folder), greedy decoding.

    Args:
        path: hub id (e.g. ``Qwen/Qwen2.5-7B-Instruct``) or local folder of a text chat model.
        device: torch device; ``auto`` takes CUDA when present.
        max_new_tokens: reply length cap (the verdict is a short JSON object).
    """

    def __init__(self, path: str, device: str = "auto", dtype: str = "auto", max_new_tokens: int = 48,
                 local_files_only: bool = False) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        torch_dtype = {"auto": torch.bfloat16 if device.startswith("cuda") else torch.float32,
                       "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local_files_only)
            self.model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype,
                                                              local_files_only=local_files_only)
        except OSError as exc:
            raise JudgeUnavailable(
                f"cannot load judge model {path!r}: {exc.__class__.__name__}. Pass a local folder of a chat "
                "model, or a hub id on a machine that can download it") from None
        if not getattr(self.tokenizer, "chat_template", None):
            raise JudgeUnavailable(f"judge model {path!r} has no chat template: use an instruction-tuned chat model")
        self.model.to(device).eval()
        self.device = torch.device(device)
        self.max_new_tokens = max_new_tokens
        self.judge_id = f"hf:{path}"

    @torch.inference_mode()
    def reply(self, messages: list[dict[str, str]]) -> str:
        ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                 return_dict=True)["input_ids"].to(self.device)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        out = self.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=self.max_new_tokens,
                                  do_sample=False, pad_token_id=pad)
        return self.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


class OpenAIChatJudge:
    """An OpenAI-compatible ``/v1/chat/completions`` endpoint, temperature 0.

    Args:
        model: the model name the endpoint serves.
        base_url: e.g. ``http://127.0.0.1:8000/v1`` (vLLM) or ``https://api.openai.com/v1``.
        api_key_env: environment variable holding the API key (sent as a Bearer token when set).
        timeout_s: per-request timeout.
        retries: extra attempts on connection errors, 429 and 5xx, with exponential back-off.
    """

    def __init__(self, model: str, base_url: str, api_key_env: str = "OPENAI_API_KEY", timeout_s: float = 60.0,
                 retries: int = 3, max_tokens: int = 48) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise UserInputError(f"--base-url {base_url!r} must start with http:// or https://, e.g. "
                                 "http://127.0.0.1:8000/v1")
        self.model = model
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.api_key = os.environ.get(api_key_env)
        self.timeout_s = timeout_s
        self.retries = retries
        self.max_tokens = max_tokens
        self.judge_id = f"openai:{model}@{base_url.rstrip('/')}"

    def reply(self, messages: list[dict[str, str]]) -> str:
        body = json.dumps({"model": self.model, "messages": messages, "temperature": 0,
                           "max_tokens": self.max_tokens}).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        delay = 1.0
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    return _content(json.loads(response.read()))
            except urllib.error.HTTPError as exc:
                detail = exc.read()[:300].decode(errors="replace")
                if exc.code != 429 and exc.code < 500:
                    raise JudgeError(f"{self.url} answered HTTP {exc.code}: {detail}") from None
                failure: str = f"HTTP {exc.code}: {detail}"
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                failure = str(getattr(exc, "reason", exc))
            if attempt < self.retries:
                logger.warning("judge request failed (%s); retrying in %.0f s", failure, delay)
                time.sleep(delay)
                delay *= 2
        raise JudgeUnavailable(f"judge endpoint {self.url} is not answering ({failure}) after {self.retries + 1} "
                               "attempt(s): check --base-url and that the server is up, then run the same command "
                               "again (judged questions are kept)")


def _content(payload: object) -> str:
    try:
        content = payload["choices"][0]["message"]["content"]  # type: ignore[index]
    except (KeyError, IndexError, TypeError):
        raise JudgeError(f"not a chat-completions reply: {str(payload)[:200]}") from None
    if not isinstance(content, str):
        raise JudgeError(f"reply content is not text: {str(content)[:200]}")
    return content


def make_judge(spec: str, base_url: str | None = None, api_key_env: str = "OPENAI_API_KEY",
               device: str = "auto", local_files_only: bool = False) -> Judge:
    """``hf:PATH`` -> :class:`HFChatJudge`; ``openai:MODEL`` (with ``base_url``) -> :class:`OpenAIChatJudge`."""
    kind, _, name = spec.partition(":")
    if kind == "hf" and name:
        return HFChatJudge(name, device=device, local_files_only=local_files_only)
    if kind == "openai" and name:
        if not base_url:
            raise UserInputError("--judge openai:MODEL needs --base-url, e.g. http://127.0.0.1:8000/v1")
        return OpenAIChatJudge(name, base_url, api_key_env=api_key_env)
    raise UserInputError(f"--judge {spec!r} is not hf:PATH_OR_HUB_ID or openai:MODEL (with --base-url)")
