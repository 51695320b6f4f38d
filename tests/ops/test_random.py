"""Per-image stateless draws: keyed by the image's index, not its place in the batch."""

import numpy as np
import tensorflow as tf

from tfrecap.ops.random import per_image_uniform


def test_a_row_depends_on_its_index_not_on_the_batch():
    index = tf.constant([3, 7, 11, 12], tf.int64)
    full = per_image_uniform(5, 0, index, [4, 4, 3]).numpy()
    subset = per_image_uniform(5, 0, index[1:3], [4, 4, 3]).numpy()
    np.testing.assert_array_equal(full[1:3], subset)
    reordered = per_image_uniform(5, 0, tf.reverse(index, [0]), [4, 4, 3]).numpy()
    np.testing.assert_array_equal(full[::-1], reordered)


def test_images_streams_and_seeds_get_their_own_numbers():
    index = tf.constant([0, 1], tf.int64)
    a = per_image_uniform(5, 0, index, [32]).numpy()
    assert not np.allclose(a[0], a[1])
    assert not np.allclose(a, per_image_uniform(5, 1, index, [32]).numpy())
    assert not np.allclose(a, per_image_uniform(6, 0, index, [32]).numpy())
    assert a.min() >= 0.0 and a.max() < 1.0


def test_integer_draws_respect_their_range_inside_a_tf_function():
    @tf.function
    def draw(index):
        return per_image_uniform(tf.constant(9, tf.int64), 2, index, [100], 0, 7, tf.int32)

    values = draw(tf.range(8, dtype=tf.int64)).numpy()
    assert values.dtype == np.int32 and values.min() >= 0 and values.max() < 7
    assert len(np.unique(values)) == 7
