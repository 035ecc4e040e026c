"""CUDA graphs for the classifiers' forward pass (models/graphs.py): the same numbers as eager, fewer launches."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models.graphs import MAX_GRAPHED_BATCH, GraphedModule, padded_size


def test_batches_are_padded_to_the_next_power_of_two() -> None:
    assert [padded_size(n) for n in (1, 2, 3, 4, 5, 63, 64, 65)] == [1, 2, 4, 4, 8, 64, 64, 128]


def small_network() -> nn.Module:
    torch.manual_seed(0)
    return (
        nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Conv2d(8, 4, 3, stride=2),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        .cuda()
        .eval()
        .half()
    )


@pytest.mark.gpu
def test_graph_replays_equal_the_eager_forward_for_any_batch_size() -> None:
    network = small_network()
    graphed = GraphedModule(network)
    with torch.no_grad():
        for count in (1, 3, 5, 64, 3):
            batch = torch.rand(count, 1, 32, 32, device="cuda", dtype=torch.float16)
            torch.testing.assert_close(graphed(batch), network(batch), atol=2e-3, rtol=2e-3)
    assert graphed.recorded_sizes == [1, 4, 8, 64], "one graph per padded size, recorded once"


@pytest.mark.gpu
def test_what_a_graph_cannot_serve_runs_eagerly() -> None:
    graphed = GraphedModule(small_network())
    with torch.no_grad():
        oversized = torch.rand(MAX_GRAPHED_BATCH + 1, 1, 16, 16, device="cuda", dtype=torch.float16)
        assert graphed(oversized).shape == (MAX_GRAPHED_BATCH + 1, 4)
    with_gradients = graphed(torch.rand(2, 1, 16, 16, device="cuda", dtype=torch.float16))
    assert with_gradients.requires_grad, "gradients on: the eager module, so autograd works"
    assert graphed.recorded_sizes == []
