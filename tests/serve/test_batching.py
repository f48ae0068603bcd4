"""MicroBatcher: concurrent submissions share forward passes, each caller gets its own row, errors reach all."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from radcnn.serve.batching import MicroBatcher


def slow_sum(delay: float):
    calls = []

    def forward(batch: np.ndarray) -> np.ndarray:
        calls.append(len(batch))
        time.sleep(delay)  # while one pass runs, the next requests queue up
        return batch.reshape(len(batch), -1).sum(axis=1, keepdims=True)

    return forward, calls


def test_requests_arriving_together_share_a_forward_pass_and_get_their_own_rows():
    forward, calls = slow_sum(0.05)

    async def scenario():
        batcher = MicroBatcher(forward, max_batch=8, max_wait_s=0.02)
        await batcher.start()
        try:
            items = [np.full((1, 2, 2), i, dtype=np.float32) for i in range(20)]
            rows = await asyncio.gather(*(batcher.submit(x) for x in items))
        finally:
            await batcher.stop()
        return rows, batcher.batch_sizes

    rows, sizes = asyncio.run(scenario())
    assert [float(r[0]) for r in rows] == [4.0 * i for i in range(20)]  # 2×2 pixels of value i
    assert sum(sizes) == 20 and max(sizes) <= 8 and len(sizes) == len(calls) <= 4
    assert sizes == calls


def test_a_lone_request_waits_at_most_the_window():
    forward, _ = slow_sum(0.0)

    async def scenario():
        batcher = MicroBatcher(forward, max_batch=16, max_wait_s=0.05)
        await batcher.start()
        try:
            start = time.perf_counter()
            await batcher.submit(np.ones((1, 2, 2), np.float32))
            return time.perf_counter() - start
        finally:
            await batcher.stop()

    assert asyncio.run(scenario()) < 1.0


def test_a_failing_forward_pass_fails_its_callers_and_the_batcher_goes_on():
    state = {"fail": True}

    def forward(batch):
        if state["fail"]:
            state["fail"] = False
            raise RuntimeError("boom")
        return batch.reshape(len(batch), -1)[:, :1]

    async def scenario():
        batcher = MicroBatcher(forward, max_batch=4, max_wait_s=0.01)
        await batcher.start()
        try:
            with pytest.raises(RuntimeError, match="boom"):
                await batcher.submit(np.zeros((1, 1, 1), np.float32))
            return await batcher.submit(np.full((1, 1, 1), 7, np.float32))
        finally:
            await batcher.stop()

    assert float(asyncio.run(scenario())[0]) == 7.0


def test_forward_passes_never_overlap():
    active, overlaps = [0], []
    lock = threading.Lock()

    def forward(batch):
        with lock:
            active[0] += 1
            overlaps.append(active[0])
        time.sleep(0.01)
        with lock:
            active[0] -= 1
        return batch.reshape(len(batch), -1)[:, :1]

    async def scenario():
        batcher = MicroBatcher(forward, max_batch=2, max_wait_s=0.0)
        await batcher.start()
        try:
            await asyncio.gather(*(batcher.submit(np.zeros((1, 1, 1), np.float32)) for _ in range(10)))
        finally:
            await batcher.stop()

    asyncio.run(scenario())
    assert max(overlaps) == 1
