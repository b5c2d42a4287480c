"""LLM judge for open-ended answers, run as its own resumable stage after ``streamvqa eval run``.

``streamvqa eval judge RUN --judge hf:PATH`` (a local Hugging Face chat model) or
``--judge openai:MODEL --base-url URL`` (any OpenAI-compatible chat endpoint: vLLM, TGI, llama.cpp,
OpenAI itself) writes one judgment line per open-ended question; ``streamvqa eval score`` then reports
the judge's accuracy and mean 0-5 score next to the exact-match proxy, with the judge's id.
"""
