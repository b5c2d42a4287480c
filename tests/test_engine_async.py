"""``AsyncVideoQA``: async iteration with metadata, cancellation by the consumer, several clients and streams."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.config import StreamConfig
from pipeline.engine import AsyncVideoQA, EngineSettings, RequestCancelledError
from tests.test_session import frames_at

FAMILY = "qwen2_5_vl"


def config(max_new_tokens: int = 12) -> StreamConfig:
    return StreamConfig().replace("ingest", chunks_per_forward=2).replace("sampling", max_new_tokens=max_new_tokens)


@pytest.mark.timeout(120)
def test_async_answers_stream_with_metadata_across_clients_and_streams(tiny_models) -> None:
    async def main() -> None:
        async with AsyncVideoQA(tiny_models[FAMILY], config(), EngineSettings(speed=8.0)) as engine:
            one = await engine.watch(frames_at(2.0, 40), realtime=True)
            two = await engine.watch(frames_at(2.0, 40, seed=1), realtime=True)
            await asyncio.sleep(0.5)

            async def client(stream, k: int) -> tuple[str, dict]:
                answer = stream.ask(f"client {k}: what happens?")
                text = "".join([piece.text async for piece in answer])
                return text, answer.info.to_dict()

            results = await asyncio.gather(*(client(s, k) for k in range(3) for s in (one, two)))
            for text, info in results:
                assert info["status"] == "done" and text == info["answer"]
                assert info["question_time"] is not None and info["frames_covered"][1] >= info["question_time"]
                assert info["ttft_s"] is not None and info["lag_s"] == 0.0
            assert {info["stream_id"] for _, info in results} == {one.stream_id, two.stream_id}
            stats = await one.stats()
            assert stats["answers"] == 3

    asyncio.run(main())


@pytest.mark.timeout(120)
def test_leaving_the_loop_or_cancelling_the_task_cancels_the_request(tiny_models) -> None:
    async def main() -> None:
        async with AsyncVideoQA(tiny_models[FAMILY], config(500)) as engine:
            stream = await engine.watch(frames_at(2.0, 8))
            assert await stream.wait_ended(timeout=30)

            answer = stream.ask("A very long answer please.")
            async for _ in answer:
                break  # the consumer walks away
            await asyncio.sleep(0.3)
            assert answer.done and answer.info.status == "cancelled" and answer.info.num_tokens < 500

            other = stream.ask("Another long one.")

            async def consume() -> None:
                async for _ in other:
                    pass

            task = asyncio.create_task(consume())
            await asyncio.sleep(0.3)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.sleep(0.3)
            assert other.info.status == "cancelled"
            with pytest.raises(RequestCancelledError):
                await other.result()

            short = stream.ask("Short?", sampling=None)
            assert (await short.result()).status == "done"

    asyncio.run(main())


@pytest.mark.timeout(120)
def test_result_after_iterating_returns_the_metadata(tiny_models) -> None:
    async def main() -> None:
        async with AsyncVideoQA(tiny_models[FAMILY], config()) as engine:
            stream = await engine.watch(frames_at(2.0, 8))
            assert await stream.wait_ended(timeout=30)
            answer = stream.ask("What happens?")
            text = "".join([piece.text async for piece in answer])
            info = await asyncio.wait_for(answer.result(), timeout=10)  # the end was already read
            assert info.status == "done" and info.answer == text
            assert [piece async for piece in answer] == []  # pieces are delivered once

            request = engine.sync.watch(frames_at(2.0, 4)).ask("And now?")
            pieces = list(request)
            assert request.result(timeout=10).answer == "".join(p.text for p in pieces)

    asyncio.run(main())
