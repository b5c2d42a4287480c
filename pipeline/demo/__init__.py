"""UI-independent parts of the Gradio demo (``app.py``): per-browser stream registry, evidence
thumbnails, and the memory statistics history with its plot. Nothing here imports Gradio."""
