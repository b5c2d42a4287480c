"""Per-token group quantisation: round-trip error bounds, packing, selection, key smoothing."""

from __future__ import annotations

import pytest
import torch

from memory.quantize import dequantize, max_round_trip_error, quantize
from memory.quantized_segment import QuantizedSegment


@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("group_size", [16, 32, 128])
def test_round_trip_error_is_within_half_a_step(bits: int, group_size: int) -> None:
    torch.manual_seed(bits + group_size)
    x = torch.randn(1, 4, 50, 128) * 3 + torch.linspace(-20, 20, 128)  # large per-channel offsets
    q = quantize(x, bits, group_size)
    error = (dequantize(q) - x).abs()
    assert (error <= max_round_trip_error(x, bits, group_size)).all()
    # the step is (max - min) / (2**bits - 1) per group: int8 is ~17x finer than int4
    relative = (error.norm() / x.norm()).item()
    assert relative < (0.01 if bits == 8 else 0.12)


@pytest.mark.parametrize("bits, bytes_per_token", [(8, 128 + 4 * 2 * 2), (4, 64 + 4 * 2 * 2)])
def test_codes_are_packed(bits: int, bytes_per_token: int) -> None:
    q = quantize(torch.randn(1, 2, 10, 128), bits, 32)
    assert q.codes.dtype == torch.uint8
    assert q.nbytes() == 2 * 10 * bytes_per_token  # codes + float16 scale and zero per group


def test_constant_groups_round_trip_exactly() -> None:
    x = torch.full((1, 1, 3, 32), 0.5)
    assert torch.equal(dequantize(quantize(x, 4, 32)), x)


def test_selection_and_concatenation_act_on_tokens() -> None:
    x = torch.randn(1, 2, 6, 32)
    q = quantize(x, 4, 16)
    index = torch.tensor([[0, 2, 5], [1, 3, 4]])
    picked = dequantize(q.select(index))
    assert torch.equal(picked, dequantize(q).gather(2, index.view(1, 2, 3, 1).expand(1, 2, 3, 32)))
    assert torch.equal(dequantize(q.cat(q)), torch.cat([dequantize(q)] * 2, dim=2))


def test_key_smoothing_shrinks_the_error_of_biased_keys() -> None:
    """Keys with a large shared per-channel bias (Qwen2 k_proj): subtracting the channel mean first
    leaves the quantiser the small part only."""
    torch.manual_seed(0)
    bias = torch.randn(1, 2, 1, 64) * 30
    keys = torch.randn(1, 2, 40, 64) + bias
    values = torch.randn(1, 2, 40, 64)
    origin = torch.arange(40).expand(2, -1)
    smoothed = QuantizedSegment.build(keys, values, origin, 4, 32).dequantized(torch.float32)[0]
    plain = dequantize(quantize(keys, 4, 32))
    assert (smoothed - keys).abs().mean() < 0.25 * (plain - keys).abs().mean()


def test_segment_keeps_tokens_ordered_by_logical_index() -> None:
    keys, values = torch.randn(1, 2, 4, 32), torch.randn(1, 2, 4, 32)
    segment = QuantizedSegment.build(keys[:, :, 2:], values[:, :, 2:], torch.tensor([[5, 9], [6, 8]]), 8, 32)
    segment = segment.added(keys[:, :, :2], values[:, :, :2], torch.tensor([[1, 7], [2, 3]]))
    assert segment.origin.tolist() == [[1, 5, 7, 9], [2, 3, 6, 8]]
    expected_values = torch.stack([values[0, 0, [0, 2, 1, 3]], values[0, 1, [0, 1, 2, 3]]]).unsqueeze(0)
    _, got_values = segment.dequantized(torch.float32)
    assert (got_values - expected_values).abs().max() <= max_round_trip_error(values, 8, 32).max()
