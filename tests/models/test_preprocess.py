"""models.preprocess: the letterbox every deep backend uses: aspect kept, padding centred, boxes mapped back within a
pixel."""

from __future__ import annotations

import multiprocessing

import numpy as np
import pytest

from models.preprocess import letterbox, letterbox_all


@pytest.mark.parametrize("shape", [(1955, 1841), (300, 800), (1000, 1000), (2500, 2048)])
@pytest.mark.parametrize("size", [224, 512, 1024])
def test_boxes_survive_the_round_trip_within_one_pixel(shape: tuple[int, int], size: int) -> None:
    rows, cols = shape
    image = np.random.default_rng(1).random(shape, dtype=np.float32)
    model_input, transform = letterbox(image, size)
    assert model_input.shape == (size, size)
    rng = np.random.default_rng(2)
    for _ in range(200):
        x0, x1 = sorted(rng.uniform(0, cols, 2))
        y0, y1 = sorted(rng.uniform(0, rows, 2))
        back = transform.to_source(transform.to_model((x0, y0, x1, y1)))
        assert max(abs(a - b) for a, b in zip(back, (x0, y0, x1, y1), strict=True)) <= 1.0


def test_padding_is_centred_and_the_content_is_the_image() -> None:
    image = np.ones((400, 800), dtype=np.float32)
    model_input, transform = letterbox(image, 224, fill=0.0)
    rows, cols = transform.content
    assert (rows.start, rows.stop, cols.start, cols.stop) == (56, 168, 0, 224)
    assert np.allclose(model_input[rows, cols], 1.0)
    assert model_input[:56].sum() == 0 and model_input[168:].sum() == 0


def test_a_feature_found_in_the_model_input_maps_back_onto_the_source() -> None:
    """Pixels, not only numbers: a bright square in the source is found where it was after the round trip."""
    image = np.zeros((1955, 1841), dtype=np.float32)
    image[700:900, 300:500] = 1.0
    model_input, transform = letterbox(image, 1024)
    ys, xs = np.nonzero(model_input > 0.5)
    x0, y0, x1, y1 = transform.to_source((float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)))
    tolerance = 1.0 / transform.scale + 1.0  # one model pixel, in source pixels, plus rounding
    assert abs(x0 - 300) <= tolerance and abs(y0 - 700) <= tolerance
    assert abs(x1 - 500) <= tolerance and abs(y1 - 900) <= tolerance


def test_boxes_are_clipped_to_the_source() -> None:
    _, transform = letterbox(np.zeros((400, 800), dtype=np.float32), 224)
    assert transform.to_source((-5.0, 0.0, 230.0, 224.0)) == (0.0, 0.0, 800.0, 400.0)


def test_letterbox_all_equals_letterbox_image_by_image_in_order() -> None:
    rng = np.random.default_rng(0)
    images = [rng.random(shape, dtype=np.float32) for shape in ((300, 200), (200, 300), (512, 512), (41, 977)) * 3]
    for (array, transform), image in zip(letterbox_all(images, 224), images, strict=True):
        expected, expected_transform = letterbox(image, 224)
        assert transform == expected_transform
        np.testing.assert_array_equal(array, expected)


def _letterbox_in_child(queue: multiprocessing.Queue[tuple[int, int]]) -> None:
    (array, _), _ = letterbox_all([np.ones((64, 32), dtype=np.float32)] * 2, 16)
    queue.put(array.shape)


def test_letterbox_all_works_in_a_forked_child_after_the_parent_used_it() -> None:
    """Celery's prefork pool forks workers: the inherited thread pool has no threads and must be replaced."""
    letterbox_all([np.ones((2000, 2000), dtype=np.float32)] * 64, 16)  # enough to start every thread
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_letterbox_in_child, args=(queue,))
    child.start()
    try:
        assert queue.get(timeout=30) == (16, 16)
        child.join(timeout=30)
        assert child.exitcode == 0
    finally:
        child.kill()
