"""One conformance suite for every registered backbone family, run on each family's tiny checkpoint.

Supporting a family means passing all of this, not loading:

* chunked incremental prefill == one-shot processing of the same frames through the family's own
  processor and chat template (logits within 1e-4, the same greedy tokens);
* the streamed token sequence is the processor's rendering, token for token;
* the positions passed to the language model equal a reference written by hand here;
* answering through ``StreamSession`` leaves memory tensors exactly as they were;
* ``sink_window`` eviction between forward calls == one full forward with a mask hiding evicted chunks;
* re-indexed keys equal keys written fresh at the new positions, and a stream many times longer than
  the position range fits;
* a session saved mid-stream (after evictions and re-indexing) and resumed holds the same memory and
  continues exactly as the uninterrupted stream (same memory, same answer);
* ``streamvqa make-tiny --family F`` writes a checkpoint that loads back as family F;
* every real-size random config has its published parameter count (built on the meta device).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from datetime import timedelta

import numpy as np
import pytest
import torch
from transformers import AutoProcessor
from transformers.video_utils import VideoMetadata

from memory.policies import POLICIES
from memory.streaming_cache import StreamingCache
from models.protocol import SamplingParams, VideoLM
from models.random_configs import RANDOM_CONFIGS, count_parameters
from models.registry import FAMILIES, load_model
from models.stream_base import LinearStreamLM
from pipeline.cli import main as cli_main
from pipeline.config import StreamConfig
from pipeline.errors import ModelLoadError
from pipeline.frames import Frame
from pipeline.session import StreamSession
from pipeline.videoqa import VideoQA
from tests.model_fixtures import family_checkpoints, family_models  # noqa: F401  (session fixtures)
from tests.test_positions import reference_positions
from tests.test_session import assert_same, frames_at, snapshot

ALL_FAMILIES = ["qwen2_vl", "qwen2_5_vl", "qwen3_vl", "llava_onevision", "smolvlm"]
QWEN2 = ("qwen2_vl", "qwen2_5_vl")
SYSTEM = "You are a helpful assistant."
QUESTION = "What happens in the video?"
FPS = 2.0
# Frames are made at the size the family's stream uses, so the processor is asked not to resize.
FRAME_HW = {"qwen2_vl": (56, 84), "qwen2_5_vl": (56, 84), "qwen3_vl": (64, 96), "llava_onevision": (42, 42),
            "smolvlm": (56, 56)}


def test_every_family_is_registered() -> None:
    assert list(FAMILIES) == ALL_FAMILIES


def make_frames(family: str, n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (*FRAME_HW[family], 3), dtype=np.uint8) for _ in range(n)]


@pytest.fixture(scope="module")
def processors(family_checkpoints) -> dict:  # noqa: F811
    return {family: AutoProcessor.from_pretrained(path) for family, path in family_checkpoints.items()}


@contextlib.contextmanager
def processor_intro(model: VideoLM, n_frames: int, duration: float) -> Iterator[None]:
    """SmolVLM only: the processor's intro sentence for this clip (a stream cannot know N or the duration)."""
    if model.family != "smolvlm":
        yield
        return
    from num2words import num2words

    saved = model.video_intro
    model.video_intro = (
        f"You are provided the following series of {num2words(n_frames)} frames from a "
        f"{timedelta(seconds=int(duration))} [H:MM:SS] video.\n"
    )
    try:
        yield
    finally:
        model.video_intro = saved


def one_shot_inputs(family: str, processor, frames: list[np.ndarray]) -> dict:
    """The whole prompt (system, video, question) through the family's processor and chat template."""
    messages = [
        {"role": "system", "content": [{"type": "text", "text": SYSTEM}]},
        {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": QUESTION}]},
    ]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    n = len(frames)
    metadata = [VideoMetadata(total_num_frames=n, fps=FPS, frames_indices=list(range(n)), duration=n / FPS)]
    kwargs: dict = {"videos_kwargs": {"do_resize": False}}
    if family in ("qwen2_vl", "qwen2_5_vl", "qwen3_vl"):
        kwargs["videos_kwargs"].update(do_sample_frames=False, cap_pixels_per_frame=False)
    if family in ("qwen3_vl", "smolvlm"):
        kwargs["videos_kwargs"]["do_sample_frames"] = False
        kwargs["video_metadata"] = metadata
    return processor(text=[text], videos=[np.stack(frames)], return_tensors="pt", **kwargs)


def model_inputs(family: str, inputs) -> dict:
    """What the ``*ForConditionalGeneration`` forward needs besides ``input_ids`` and positions."""
    if family == "smolvlm":
        return {"pixel_values": inputs["pixel_values"], "pixel_attention_mask": inputs["pixel_attention_mask"]}
    if family == "llava_onevision":
        return {"pixel_values_videos": inputs["pixel_values_videos"]}
    return {"pixel_values_videos": inputs["pixel_values_videos"], "video_grid_thw": inputs["video_grid_thw"]}


def hand_positions(family: str, model, ids: list[int], inputs) -> torch.Tensor:
    """Reference positions of the one-shot prompt, written out here token by token.

    Qwen2/2.5-VL: the Qwen reference rule (``tests/test_positions.reference_positions``). Qwen3-VL:
    text advances (t, h, w) together; a run of ``h * w`` video tokens starting at ``s`` is
    ``(s, s + i, s + j)`` and the next token is at ``s + max(h, w)``. LLaVA-OneVision, SmolVLM: 0..L-1.
    Returns ``(3, 1, L)`` for M-RoPE families, ``(1, L)`` otherwise.
    """
    if family in QWEN2:
        grid_t, grid_h, grid_w = inputs["video_grid_thw"][0].tolist()
        n_video = grid_t * grid_h * grid_w // 4
        first = ids.index(model.video_token_id)
        rows = reference_positions(
            first, grid_t, grid_h // 2, grid_w // 2, len(ids) - first - n_video, 2 / FPS, model.tokens_per_second
        )
        return torch.tensor(rows).T.unsqueeze(1)
    if family == "qwen3_vl":
        _, grid_h, grid_w = inputs["video_grid_thw"][0].tolist()
        h, w = grid_h // 2, grid_w // 2
        rows, p, i = [], 0, 0
        while i < len(ids):
            if ids[i] == model.video_token_id:
                rows += [(p, p + r, p + c) for r in range(h) for c in range(w)]
                i, p = i + h * w, p + max(h, w)
            else:
                rows.append((p, p, p))
                i, p = i + 1, p + 1
        return torch.tensor(rows).T.unsqueeze(1)
    return torch.arange(len(ids)).unsqueeze(0)


@contextlib.contextmanager
def recorded_calls(model) -> Iterator[list[dict]]:
    """Every call into the model's language model (inputs and positions), in order."""
    calls: list[dict] = []
    keys = ("inputs_embeds", "position_ids", "visual_pos_masks", "deepstack_visual_embeds")

    def hook(module, args, kwargs):  # noqa: ANN001
        calls.append({k: kwargs.get(k) for k in keys})

    handle = model.language_model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield calls
    finally:
        handle.remove()


def stream(model, frames: list[np.ndarray], step: int) -> tuple[StreamingCache, object, list]:
    """Header, then the frames ``step`` at a time through encode + prefill."""
    cache = StreamingCache(model.num_layers)
    cursor = model.new_stream_state()
    model.start(cache, cursor, SYSTEM)
    stamps = [i / FPS for i in range(len(frames))]
    chunks = []
    for k in range(0, len(frames), step):
        batch = model.encode(frames[k : k + step], stamps[k : k + step])
        model.prefill(batch, cache, cursor)
        chunks += batch
    return cache, cursor, chunks


@torch.inference_mode()
def question_logits(model, cache: StreamingCache, cursor) -> torch.Tensor:
    """``(vocab,)`` logits after the question turn (appended to ``cache``; the caller rolls back)."""
    if isinstance(model, LinearStreamLM):
        return model._forward(model._question_embeds(QUESTION), cache, cursor)
    return model._forward_text(model._ids(model.question_text(QUESTION)), cache, cursor)


@torch.inference_mode()
def greedy_one_shot(hf, input_ids: torch.Tensor, extra: dict, positions: torch.Tensor, n: int):
    """First-step logits and ``n`` greedy tokens, re-running the whole sequence each step (no cache)."""
    first, tokens = None, []
    for _ in range(n):
        logits = hf(input_ids=input_ids, position_ids=positions, **extra).logits[0, -1]
        first = logits if first is None else first
        token = int(logits.argmax())
        tokens.append(token)
        input_ids = torch.cat([input_ids, torch.tensor([[token]])], dim=1)
        positions = torch.cat([positions, positions[..., -1:] + 1], dim=-1)
    return first, tokens


def placeholder_id(model) -> int:
    return model.image_token_id if model.family == "smolvlm" else model.video_token_id


def streamed_ids(model, chunks: list) -> list[int]:
    """The token ids the stream feeds, visual tokens shown as the family's placeholder id."""
    ids = model._ids(model.header_text(SYSTEM))
    for chunk in chunks:
        ids += list(getattr(chunk, "prefix_ids", ()))
        ids += [placeholder_id(model)] * int(chunk.embeds.shape[0])
        ids += list(getattr(chunk, "suffix_ids", ()))
    if model.family == "llava_onevision":
        ids.append(model.video_token_id)  # the closing image_newline
    return ids + model._ids(model.question_text(QUESTION))


# ----------------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("family", ALL_FAMILIES)
@pytest.mark.parametrize("n_frames,chunks_per_call", [(8, 1), (9, 2), (10, 4)])
def test_incremental_equals_one_shot(family_models, processors, family, n_frames, chunks_per_call) -> None:  # noqa: F811
    model = family_models[family]
    frames = make_frames(family, n_frames)
    inputs = one_shot_inputs(family, processors[family], frames)
    ids = inputs["input_ids"][0].tolist()
    positions = hand_positions(family, model, ids, inputs)
    with processor_intro(model, n_frames, n_frames / FPS):
        cache, cursor, _ = stream(model, frames, model.frames_per_chunk * chunks_per_call)
        assert cache.logical_length + model.count_question_tokens(QUESTION) == len(ids)
        checkpoint = cache.checkpoint()
        incremental = question_logits(model, cache, cursor.copy())
        cache.rollback(checkpoint)
        reference, reference_tokens = greedy_one_shot(model.model, inputs["input_ids"], model_inputs(family, inputs),
                                                      positions, n=6)
        assert (incremental - reference).abs().max().item() <= 1e-4
        model.stop_token_ids, saved = set(), model.stop_token_ids  # compare raw greedy tokens
        try:
            pieces = list(model.answer(QUESTION, cache, cursor.copy(), SamplingParams(max_new_tokens=6)))
        finally:
            model.stop_token_ids = saved
            cache.rollback(checkpoint)
    assert [t for p in pieces for t in p.token_ids] == reference_tokens


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_streamed_tokens_are_the_processor_rendering(family_models, processors, family) -> None:  # noqa: F811
    model = family_models[family]
    frames = make_frames(family, 4, seed=1)
    inputs = one_shot_inputs(family, processors[family], frames)
    with processor_intro(model, 4, 4 / FPS):
        _, _, chunks = stream(model, frames, len(frames))
        assert streamed_ids(model, chunks) == inputs["input_ids"][0].tolist()


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_positions_equal_the_hand_written_reference(family_models, processors, family) -> None:  # noqa: F811
    model = family_models[family]
    frames = make_frames(family, 6, seed=2)
    inputs = one_shot_inputs(family, processors[family], frames)
    ids = inputs["input_ids"][0].tolist()
    with processor_intro(model, 6, 6 / FPS), recorded_calls(model) as calls:
        cache, cursor, _ = stream(model, frames, 2 * model.frames_per_chunk)
        question_logits(model, cache, cursor)
    ours = torch.cat([call["position_ids"] for call in calls], dim=-1)
    assert torch.equal(ours.cpu(), hand_positions(family, model, ids, inputs))
    if family == "qwen3_vl":  # transformers 5.23's own rule agrees for Qwen3-VL (it does not for Qwen2/2.5)
        theirs, _ = model.model.model.get_rope_index(
            inputs["input_ids"], mm_token_type_ids=inputs["mm_token_type_ids"], video_grid_thw=inputs["video_grid_thw"]
        )
        assert torch.equal(theirs, ours.cpu())


def new_session(model, **memory) -> StreamSession:
    config = StreamConfig().replace("sampling", max_new_tokens=8).replace("ingest", chunks_per_forward=1)
    if memory:
        config = config.replace("memory", **memory)
    return StreamSession(model, config)


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_answering_leaves_memory_exactly_as_it_was(family_models, family) -> None:  # noqa: F811
    session = new_session(family_models[family])
    session.feed(frames_at(FPS, 5))  # 5: a Qwen chunk is left half full and lives only in the answer's view
    before = snapshot(session)
    first = session.ask("What happens?")
    assert_same(before, snapshot(session))
    assert session.ask("What happens?").answer == first.answer
    stream_ = session.ask_stream("Describe it.", sampling=SamplingParams(max_new_tokens=8))
    next(stream_)
    stream_.close()  # abandoned midway
    assert_same(before, snapshot(session))


@pytest.mark.parametrize("family", ALL_FAMILIES)
@pytest.mark.parametrize("policy", list(POLICIES))
def test_every_memory_policy_bounds_memory_and_answers_leave_it_unchanged(family_models, family, policy) -> None:  # noqa: F811
    """Each policy on each family: memory stays within window + budget, answers never change it."""
    model = family_models[family]
    session = new_session(model, policy=policy, window_frames=4, budget_tokens=6)
    per_chunk = model.frames_per_chunk
    still = [f.rgb for f in frames_at(FPS, 8, seed=5)]
    chunks = [still[i : i + per_chunk] for i in range(0, len(still), per_chunk)]
    images = [image for chunk in chunks for image in chunk + chunk]  # every chunk comes twice in a row
    frames = [Frame(i, i / FPS, image) for i, image in enumerate(images)]
    session.feed(frames)
    stats = session.bank.stats()
    assert stats.resident_frames <= len(frames)
    assert session.counters.tokens_dropped >= 0
    if policy.startswith("token_drop"):
        assert session.counters.tokens_dropped > 0  # a repeated frame's patches are dropped
    before = snapshot(session)
    session.ask("What happens?")
    assert_same(before, snapshot(session))


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_sink_window_eviction_equals_masked_full_attention(family_models, family) -> None:  # noqa: F811
    """Eviction between calls == one forward over everything written, with evicted chunks masked out.

    Rows of chunk ``c`` see the header, the chunks resident when ``c`` was written and ``c`` itself
    (causally); question rows see the header and the chunks resident at question time. The reference
    replays the exact inputs the stream fed (recorded), so only the attention pattern differs.
    """
    model = family_models[family]
    per_chunk = model.frames_per_chunk
    n_chunks = 6
    resident_when_written: list[list[int]] = []
    with recorded_calls(model) as calls:
        session = new_session(model, policy="sink_window", window_frames=2 * per_chunk, budget_tokens=0)
        bank = session.bank
        make_room = bank.make_room

        def spy(*args, **kwargs) -> None:  # noqa: ANN002, ANN003
            make_room(*args, **kwargs)
            resident_when_written.append([block.chunk_index for block in bank.blocks])

        bank.make_room = spy
        session.feed(frames_at(FPS, n_chunks * per_chunk, seed=3))
        checkpoint = bank.cache.checkpoint()
        evicted_logits = question_logits(model, bank.cache, session.cursor.copy())
        bank.cache.rollback(checkpoint)
    assert [b.chunk_index for b in bank.blocks] == [n_chunks - 2, n_chunks - 1]
    lengths = [int(call["inputs_embeds"].shape[1]) for call in calls]  # header, n_chunks chunks, question
    assert len(calls) == n_chunks + 2 and lengths[0] == bank.sink_tokens
    starts = np.cumsum([0] + lengths).tolist()
    length = starts[-1]
    visible = torch.ones(length, length, dtype=torch.bool).tril()
    for c in range(n_chunks + 1):  # c == n_chunks: the question
        rows = slice(starts[c + 1], starts[c + 2])
        resident = resident_when_written[c] + [c] if c < n_chunks else [b.chunk_index for b in bank.blocks]
        for old in range(min(c, n_chunks)):
            if old not in resident:
                visible[rows, starts[old + 1] : starts[old + 2]] = False
    kwargs = {
        "inputs_embeds": torch.cat([call["inputs_embeds"] for call in calls], dim=1),
        "position_ids": torch.cat([call["position_ids"] for call in calls], dim=-1),
        "attention_mask": visible[None, None],
    }
    if family == "qwen3_vl":
        masks = [call["visual_pos_masks"] for call in calls]
        masks = [m if m is not None else torch.zeros(1, n, dtype=torch.bool) for m, n in zip(masks, lengths)]
        kwargs["visual_pos_masks"] = torch.cat(masks, dim=1)
        levels = zip(*[call["deepstack_visual_embeds"] for call in calls if call["deepstack_visual_embeds"]])
        kwargs["deepstack_visual_embeds"] = [torch.cat(level) for level in levels]
    with torch.inference_mode():
        out = model.language_model(**kwargs)
        reference_logits = model.lm_head(out.last_hidden_state[0, -1]).float()
    assert (evicted_logits - reference_logits).abs().max().item() <= 1e-5


# Position ranges a few times smaller than the tiny streams below need (Qwen2-VL spends half a position
# per frame, Qwen2.5-VL one per second of video, the others whole chunks of tokens).
SMALL_POSITION_RANGE = {"qwen2_vl": 100, "qwen2_5_vl": 150, "qwen3_vl": 260, "llava_onevision": 260, "smolvlm": 260}


def small_position_session(model, monkeypatch, policy: str = "sink_window") -> StreamSession:
    monkeypatch.setattr(model, "max_positions", SMALL_POSITION_RANGE[model.family])
    config = StreamConfig()
    config = config.replace("memory", policy=policy, window_frames=4, budget_tokens=0 if policy == "sink_window" else 8)
    config = config.replace("question", max_question_tokens=24).replace("sampling", max_new_tokens=6)
    return StreamSession(model, config.replace("ingest", chunks_per_forward=2))


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_reindexed_keys_equal_fresh_keys_at_new_positions(family_models, family, monkeypatch) -> None:  # noqa: F811
    """After re-indexing, layer-0 keys equal keys computed directly at the new positions.

    Qwen2/2.5-VL move the temporal M-RoPE component only; Qwen3-VL moves a whole chunk (t, h, w and
    its timestamp text) by one delta; 1-D families move every token of the chunk.
    """
    model = family_models[family]
    written: list[tuple[int, int, int]] = []  # (chunk_index, position at write time, tokens), write order
    with recorded_calls(model) as calls:
        session = small_position_session(model, monkeypatch)
        bank = session.bank
        record = bank.record

        def spy(block) -> None:  # noqa: ANN001
            if block.chunk_index >= 0:
                written.append((block.chunk_index, block.position, block.n_tokens))
            record(block)

        bank.record = spy
        session.feed(frames_at(1.0, 120))
    assert session.counters.reindexes >= 1
    tokens = torch.cat([call["inputs_embeds"][0] for call in calls])  # header, then every chunk in order
    positions = torch.cat([call["position_ids"] for call in calls], dim=-1)
    positions = positions[:, 0] if positions.dim() == 3 else positions  # (3, L) or (1, L)
    sinks = bank.sink_tokens
    offsets = dict(zip([w[0] for w in written], np.cumsum([sinks] + [w[2] for w in written]).tolist()))
    original = {index: position for index, position, _ in written}
    axes = [0] if family in QWEN2 else list(range(positions.shape[0]))
    embeds, fresh_positions = [tokens[:sinks]], [positions[:, :sinks]]
    for block in bank.blocks:
        rows = slice(offsets[block.chunk_index], offsets[block.chunk_index] + block.n_tokens)
        moved = positions[:, rows].clone()
        moved[axes] += block.position - original[block.chunk_index]
        embeds.append(tokens[rows])
        fresh_positions.append(moved)
    fresh = StreamingCache(model.num_layers)
    position_ids = torch.cat(fresh_positions, dim=-1)
    with torch.inference_mode():
        model.language_model(
            inputs_embeds=torch.cat(embeds).unsqueeze(0),
            position_ids=position_ids.unsqueeze(1) if positions.shape[0] == 3 else position_ids,
            past_key_values=fresh,
            use_cache=True,
        )
    ours, theirs = bank.cache.layers[0].keys, fresh.layers[0].keys  # layer 0: keys depend on no other token
    assert ours.shape == theirs.shape
    assert (ours - theirs).abs().max().item() <= 1e-5


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_stream_many_times_longer_than_the_position_range(family_models, family, monkeypatch) -> None:  # noqa: F811
    model = family_models[family]
    session = small_position_session(model, monkeypatch)
    frames = frames_at(1.0, 240)
    for start in range(0, len(frames), 40):
        session.feed(frames[start : start + 40])
        assert model.next_position(session.cursor) <= session._position_limit
    assert session.counters.reindexes > 1
    before = snapshot(session)
    answer = session.ask("What happens?")
    assert answer.frames_covered[1] == 239.0
    assert_same(before, snapshot(session))


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_save_and_resume_continue_the_stream(family_models, family, monkeypatch, tmp_path) -> None:  # noqa: F811
    """Saved after evictions and re-indexing, resumed: the same memory, then the same stream and answer."""
    model = family_models[family]
    frames = frames_at(1.0, 120)
    uninterrupted = small_position_session(model, monkeypatch)
    saved = small_position_session(model, monkeypatch)
    for session in (uninterrupted, saved):
        session.feed(frames[:61])  # 61: Qwen chunks are left half full
    assert saved.counters.reindexes >= 1 and saved.bank.stats().evicted_tokens > 0
    resumed = VideoQA(model).resume(saved.save(tmp_path / "session"))
    assert_same(snapshot(saved), snapshot(resumed))
    for session in (uninterrupted, resumed):
        session.feed(frames[61:])
    assert resumed.counters.reindexes > saved.counters.reindexes
    assert_same(snapshot(uninterrupted), snapshot(resumed))
    assert resumed.ask("What happens?").answer == uninterrupted.ask("What happens?").answer


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_proxy_queries_match_what_the_cache_receives(family_models, family) -> None:  # noqa: F811
    """The proxy rows' captured keys are the keys the model writes for them; memory is untouched."""
    model = family_models[family]
    cache, cursor, _ = stream(model, make_frames(family, 4), 2 * model.frames_per_chunk)
    before = [(layer.keys.clone(), layer.values.clone()) for layer in cache.layers]
    state = cursor.copy()
    captured = model.proxy_queries(cache, cursor)
    assert cursor == state and len(captured) == model.num_layers
    for layer, (keys, values) in zip(cache.layers, before):
        assert torch.equal(layer.keys, keys) and torch.equal(layer.values, values)
    n_proxy = captured[0][1].shape[1]
    with torch.inference_mode():
        if isinstance(model, LinearStreamLM):
            model._forward(model._question_embeds(""), cache, cursor.copy(), logits=False)
        else:
            model._forward_text(model._ids(model.question_text("")), cache, cursor.copy())
    for layer, (queries, keys) in zip(cache.layers, captured):
        written = layer.keys[0, :, -n_proxy:].float()
        assert (written - keys).abs().max().item() <= 1e-5
        assert queries.shape[1] == n_proxy


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_make_tiny_writes_a_loadable_checkpoint(tmp_path, family) -> None:
    out = tmp_path / family
    assert cli_main(["make-tiny", str(out), "--family", family]) == 0
    model = load_model(str(out), device="cpu", dtype="float32", local_files_only=True)
    assert model.family == family
    assert isinstance(model, VideoLM)


def test_models_command_lists_every_family(capsys) -> None:
    assert cli_main(["models"]) == 0
    out = capsys.readouterr().out
    for family in ALL_FAMILIES:
        assert family in out
    assert "random:qwen3-vl-8b" in out


@pytest.mark.parametrize("name", list(RANDOM_CONFIGS))
def test_random_configs_have_the_published_size(name: str) -> None:
    """Built on the meta device: no memory is allocated for the billions of parameters."""
    published = RANDOM_CONFIGS[name].published_params_b * 1e9
    assert math.isclose(count_parameters(name), published, rel_tol=0.05)


def test_random_models_are_labelled_and_unknown_names_list_the_valid_ones(caplog) -> None:
    with caplog.at_level("WARNING"):
        model = load_model("random:llava-onevision-0.5b", device="meta", dtype="float32")
    assert "random weights" in model.model_id
    assert "RANDOM WEIGHTS" in caplog.text
    assert next(model.model.parameters()).device.type == "meta"
    with pytest.raises(ModelLoadError, match="random:qwen3-vl-2b"):
        load_model("random:qwen9-vl-1t")

