"""`MicroBatcher`: requests that arrive together share one forward pass.

Each request decodes its own upload (in the server's thread pool), then waits here. The first waiting input
opens a batch; whatever else arrives within `max_wait_s`, or is already queued, joins it, up to `max_batch`.
One worker thread runs the forward passes one after another, so the model is never entered twice at once and
a burst of N requests costs about N / max_batch forward passes instead of N. A lone request waits at most
`max_wait_s` (a few milliseconds) longer than it would without batching.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

log = logging.getLogger(__name__)


class MicroBatcher:
    def __init__(self, forward: Callable[[np.ndarray], np.ndarray], *, max_batch: int = 16, max_wait_s: float = 0.005):
        if max_batch < 1 or max_wait_s < 0:
            raise ValueError("max_batch must be ≥ 1 and max_wait_s ≥ 0")
        self.forward, self.max_batch, self.max_wait_s = forward, max_batch, max_wait_s
        self.batch_sizes: list[int] = []  # every forward pass so far (health endpoint, tests)
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="radcnn-forward")
        self._task = asyncio.create_task(self._run(), name="radcnn-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._queue is not None:
            while not self._queue.empty():
                _, future = self._queue.get_nowait()
                if not future.done():
                    future.set_exception(RuntimeError("the server is shutting down"))
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self._task = self._queue = self._executor = None

    async def submit(self, item: np.ndarray) -> np.ndarray:
        """One input (C, H, W) → its output row, computed in a shared batch."""
        if self._queue is None:
            raise RuntimeError("MicroBatcher.start() has not been awaited")
        future = asyncio.get_running_loop().create_future()
        await self._queue.put((item, future))
        return await future

    async def _collect(self) -> list[tuple[np.ndarray, asyncio.Future]]:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        batch = [await self._queue.get()]
        deadline = loop.time() + self.max_wait_s
        while len(batch) < self.max_batch:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
        return [(item, future) for item, future in batch if not future.done()]  # drop requests already gone

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            if not batch:
                continue
            try:
                outputs = await loop.run_in_executor(self._executor, self.forward, np.stack([b[0] for b in batch]))
            except Exception as exc:
                log.exception("forward pass over a batch of %d failed", len(batch))
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.batch_sizes.append(len(batch))
            for (_, future), row in zip(batch, outputs, strict=True):
                if not future.done():
                    future.set_result(row)
