"""A verdict does not depend on the photo's megapixels (issue 13: the scale rule).

Synthetic v2 photos at about 4 MP (the phone's own JPEG at sensor resolution: a 433×577
reference frame at d = 4) and the same photos resized to about 1 MP (1155×866, antialiased,
then JPEG 90, as a messaging app would) must get the same verdict from the shipped detector for
at least 95 % of them. Rendering a 4 MP photo takes about a minute on one core, so this is
slow-marked; ``TFRECAP_SCALE_PHOTOS`` sets the photos per class (the issue's 50 by default).
"""

import dataclasses
import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHIPPED = Path(__file__).resolve().parents[1] / "saved_models" / "default_64"
PER_CLASS = int(os.environ.get("TFRECAP_SCALE_PHOTOS", "50"))


def _jpeg(pixels: np.ndarray, quality: int) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=quality)
    return out.getvalue()


def _render(index: int):
    from tfrecap.data.simulator import V2_PARAMS
    from tfrecap.data.simulator.v2.photo import simulate_photo

    params = dataclasses.replace(V2_PARAMS, downscale=(4.0, 4.0))
    rng = np.random.default_rng(np.random.SeedSequence([20261201, index]))
    label = index % 2
    big = simulate_photo(rng, label, 433, 577, params, sensor=True)
    small = np.asarray(Image.fromarray(big).resize((1155, 866), Image.LANCZOS))
    return label, _jpeg(big, 95), _jpeg(small, 90), big.shape


@pytest.mark.slow
def test_4mp_and_1mp_versions_get_the_same_verdict():
    import concurrent.futures
    import multiprocessing

    import tensorflow as tf

    from tfrecap.export import latest_version_dir

    # Spawned, not forked: forking after TensorFlow has started (other tests) is unsafe.
    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(mp_context=spawn) as pool:
        photos = list(pool.map(_render, range(2 * PER_CLASS)))
    assert all(shape[0] * shape[1] >= 3.9e6 for _, _, _, shape in photos)
    classify = tf.saved_model.load(str(latest_version_dir(SHIPPED))).signatures["classify_images"]
    agree = []
    for _, big, small, _ in photos:
        verdicts = classify(image_bytes=tf.constant([big, small]))["label"].numpy()
        agree.append(verdicts[0] == verdicts[1])
    assert np.mean(agree) >= 0.95, f"{np.mean(agree):.1%} of {len(agree)} photos agree"
