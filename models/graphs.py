"""CUDA graphs for the classifiers' inference forward pass.

A DenseNet121 forward is about a thousand small kernels. Batched on an H100 the GPU finishes them faster than Python
can launch them: 64 images took 11 to 15 ms whatever the batch size up to 64, all of it launch overhead. A CUDA
graph records the launches once per input shape and replays them with one call.

Batches are padded to the next power of two, so at most ``log2(MAX_GRAPHED_BATCH) + 1`` graphs are recorded, lazily,
each the first time its size is needed. Anything a graph cannot serve (gradients on, a batch over the largest size,
a capture that fails) runs eagerly, so the wrapper never changes what the model computes, only how it is launched.
"""

from __future__ import annotations

import logging
import threading

import torch
from torch import nn

logger = logging.getLogger(__name__)

MAX_GRAPHED_BATCH = 256
WARM_UP_RUNS = 2
"""Eager runs on a side stream before a capture, as torch.cuda.graph requires (cuDNN picks its algorithms)."""


def padded_size(batch: int) -> int:
    return 1 << max(0, batch - 1).bit_length()


class _Recording:
    def __init__(self, graph: torch.cuda.CUDAGraph, static_input: torch.Tensor, static_output: torch.Tensor) -> None:
        self.graph, self.static_input, self.static_output = graph, static_input, static_output


class GraphedModule(nn.Module):
    """``inner`` (a module from one tensor to one tensor, no host synchronisation inside) replayed from CUDA graphs."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self._recordings: dict[tuple[object, ...], _Recording] = {}
        self._failed = False
        # A recording's input and output tensors are shared: one caller at a time (a worker runs one task at a time;
        # this keeps a second thread, in ``cxr detect`` or a test, from overwriting a batch in flight).
        self._lock = threading.Lock()

    @property
    def recorded_sizes(self) -> list[int]:
        return sorted(int(key[0]) for key in self._recordings)  # type: ignore[call-overload]

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        count = batch.shape[0]
        size = padded_size(count)
        if self._failed or torch.is_grad_enabled() or not batch.is_cuda or size > MAX_GRAPHED_BATCH:
            return self.inner(batch)  # type: ignore[no-any-return]
        key = (size, *batch.shape[1:], batch.dtype, batch.is_contiguous(memory_format=torch.channels_last))
        with self._lock:
            recording = self._recordings.get(key) or self._record(key, batch, size)
            if recording is None:
                return self.inner(batch)  # type: ignore[no-any-return]
            recording.static_input[:count].copy_(batch)
            if count < size:
                recording.static_input[count:].zero_()
            recording.graph.replay()
            return recording.static_output[:count].clone()

    def _record(self, key: tuple[object, ...], batch: torch.Tensor, size: int) -> _Recording | None:
        layout = torch.channels_last if batch.dim() == 4 and key[-1] else torch.contiguous_format
        static_input = torch.zeros((size, *batch.shape[1:]), dtype=batch.dtype, device=batch.device)
        static_input = static_input.contiguous(memory_format=layout)
        try:
            side = torch.cuda.Stream(batch.device)  # type: ignore[no-untyped-call]
            side.wait_stream(torch.cuda.current_stream(batch.device))
            with torch.cuda.stream(side):
                for _ in range(WARM_UP_RUNS):
                    self.inner(static_input)
            torch.cuda.current_stream(batch.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_output = self.inner(static_input)
        except RuntimeError:
            logger.warning("CUDA graph capture failed; this model runs without graphs", exc_info=True)
            self._failed = True
            return None
        recording = _Recording(graph, static_input, static_output)
        self._recordings[key] = recording
        logger.info("recorded a CUDA graph for batches of up to %d", size)
        return recording
