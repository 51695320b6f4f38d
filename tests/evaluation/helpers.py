"""Test helpers: hand-made attack results, a tiny trained model, and a stand-in for tqdm."""

import keras
import numpy as np
import tensorflow as tf

from tfrecap import evaluation as ev


def result(name, eps, accs, n=1000, zero=0, transfer=None, title=None):
    """An `AttackResult` with accuracy `accs[i]` of `n` images at `eps[i]`."""
    return ev.AttackResult(
        spec=ev.AttackSpec(name, {}, title),
        eps=list(eps),
        accuracy=[ev.Accuracy(int(a * n), n) for a in accs],
        zero_grad=[(zero, n) for _ in eps],
        transfer_from=transfer,
    )


class FakeBar:
    """Stands in for tqdm: records its total and its updates."""

    made: list = []

    def __init__(self, iterable=None, total=None, **kwargs):
        self.iterable, self.total, self.kwargs, self.updates = iterable, total, kwargs, []
        FakeBar.made.append(self)

    def __iter__(self):
        for item in self.iterable:
            self.updates.append(1)
            yield item

    def update(self, n=1):
        self.updates.append(n)

    def close(self):
        pass


def fake_tqdm(monkeypatch) -> list:
    """Replace tqdm: the progress bars the code under test makes are then these `FakeBar`s."""
    import tqdm.auto

    FakeBar.made = []
    monkeypatch.setattr(tqdm.auto, "tqdm", FakeBar)
    return FakeBar.made


def tiny_model_and_data(n=48, size=8):
    """A linear Keras model that separates its `(images, labels)` dataset (batches of 16)."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, n).astype("int32")
    # Class 1 is brighter in the green channel: a linear model learns it at once.
    images = rng.uniform(60, 190, (n, size, size, 3)).astype("float32")
    images[..., 1] += np.where(labels == 1, 25.0, -25.0)[:, None, None]
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((size, size, 3)), keras.layers.Rescaling(1 / 255.0),
        keras.layers.Flatten(), keras.layers.Dense(2),
    ])
    model.compile(optimizer=keras.optimizers.Adam(0.05),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(images, labels, epochs=40, batch_size=16, verbose=0)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(16)
    return model, dataset
