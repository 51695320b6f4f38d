"""Per-image stateless random draws: image n's numbers depend only on (seed, stream, index[n]).

Attacks that draw random numbers (APGD's random restarts, Square's squares) key them by each
image's index in the dataset rather than by its position in the batch (PGD's restarts are still
keyed per batch, by ``(seed, restart)``: PGD is not an ``auto`` member). So an image
gets the same draws whether it is attacked in a full batch or in the subset of images still
correct that the ``auto`` ensemble hands to its next member (issue 14), and one run of
``auto`` can never end above a member run alone. Stateless ops also give every restart and
every iteration its own numbers inside one traced `tf.function`, where two stateful random
ops with the same op-level seed would draw the same ones.
"""

import tensorflow as tf


def image_key(seed, stream, index):
    """The `[N, 2]` int64 stateless seeds of images `index` for draw `stream` under `seed`.

    Args:
        seed: int64 scalar (a Python int or a tensor): the attack's seed.
        stream: int64 scalar telling apart the draws of one attack (restart, iteration, ...).
        index: int `[N]`: each image's index in the dataset.
    """
    base = tf.stack([tf.cast(seed, tf.int64), tf.cast(stream, tf.int64)])
    index = tf.cast(index, tf.int64)
    return tf.map_fn(lambda i: tf.random.experimental.stateless_fold_in(base, i), index,
                     fn_output_signature=tf.int64)


# Traced: run eagerly, the loop would be rebuilt on every call (about 0.7 s); inside another
# tf.function the traced call is inlined at no cost.
@tf.function(autograph=False)
def per_image_uniform(seed, stream, index, shape, minval=0.0, maxval=1.0, dtype=tf.float32):
    """Uniform draws `[N, *shape]` in [minval, maxval); row n depends on (seed, stream, index[n]).

    For integer `dtype`, `minval` and `maxval` must be given (maxval exclusive), as in
    `tf.random.stateless_uniform`.
    """
    keys = image_key(seed, stream, index)
    # tf.map_fn, not vectorized_map: pfor has no converter for the stateless draw and falls
    # back to the same loop, with a warning on every trace.
    return tf.map_fn(
        lambda key: tf.random.stateless_uniform(shape, seed=key, minval=minval, maxval=maxval,
                                                dtype=dtype),
        keys, fn_output_signature=dtype)


def default_index(x):
    """Image indices 0..N-1 of a batch: the default when a caller gives none."""
    return tf.range(tf.shape(x)[0], dtype=tf.int64)


@tf.function(autograph=False)
def per_image_normal(seed, stream, index, shape, dtype=tf.float32):
    """Standard normal draws `[N, *shape]`; row n depends on (seed, stream, index[n])."""
    keys = image_key(seed, stream, index)
    return tf.map_fn(lambda key: tf.random.stateless_normal(shape, seed=key, dtype=dtype),
                     keys, fn_output_signature=dtype)
