"""The Laplacian CNN recapture detector of Yang, Ni and Zhao (IWDW 2016).

Architecture (DESIGN.md, "Model"):

    pixels [0, 255] -> fixed 3x3 Laplacian, per channel
      -> 4 x [Conv 3x3 s1 same -> BatchNorm -> ReLU -> AvgPool 5x5 s2 same]
      -> Conv 3x3 s1 same -> BatchNorm -> ReLU -> global average pooling
      -> Dense -> 2 logits (original, recaptured), always float32.

Decisions where the papers are silent (also in docs/train_step.md):

* **Widths.** Neither paper gives the channel counts. The default is
  ``(32, 64, 128, 256, 512)``: 1,570,594 trainable parameters plus 1,984
  non-trainable BatchNorm statistics (1,572,578 in all); the count does not depend on the patch
  size because the head is global average pooling.
* **Input scaling.** The model takes raw float32 pixels in [0, 255] (the
  attack budget eps is in those units) and applies the Laplacian to them
  unscaled: the filter already removes the image content, and the residual of
  8-bit photos is a few to a few tens of levels, so no /255 is needed.
  BatchNorm makes a global scale irrelevant anyway (measured: the same float16
  behaviour with /1, /16 and /255); without BatchNorm (exact tests) the raw
  scale starts the logits at O(1) instead of O(1e-3). Input gradients, and so
  the penalty of eq. 5, are in pixel units.
* **Border.** The Laplacian uses reflect padding: a flat patch filters to
  exactly 0 everywhere, so zero padding cannot turn patch brightness into a
  border feature (brightness is a nuisance, not a recapture trace).
* **Bias.** Convolutions followed by BatchNorm have no bias (BatchNorm's beta
  replaces it); without BatchNorm they do.
* **Mixed precision.** Every layer takes the model's dtype policy, except the
  logits layer, which is float32 under a mixed policy so that losses and
  attacks see float32 logits.
"""

import keras
import numpy as np
from keras import layers, ops

LAPLACIAN_KERNEL = np.array([[0, -1, 0], [-1, 4, -1], [0, -1, 0]], dtype=np.float32)
DEFAULT_WIDTHS = (32, 64, 128, 256, 512)


@keras.saving.register_keras_serializable(package="tfrecap")
class LaplacianFilter(layers.Layer):
    """Fixed, non-trainable 3x3 Laplacian applied to each channel separately.

    Computes the Laplacian with reflect padding, so the output has the input's
    spatial size. The kernel is a constant, not a weight: there is nothing to
    train, save or restore.

    Args:
        **kwargs: standard layer arguments (``name``, ``dtype``).

    Reference:
        Yang, Ni, Zhao, "Recaptured image forensics based on Laplacian
        convolutional neural networks", IWDW 2016.
    """

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError("LaplacianFilter needs a known number of channels.")
        # Integer taps: a flat patch then gives exactly 0, also in float16.
        self._kernel = np.tile(LAPLACIAN_KERNEL[:, :, None, None], (1, 1, channels, 1))

    def call(self, inputs):
        padded = ops.pad(inputs, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="reflect")
        kernel = ops.convert_to_tensor(self._kernel, dtype=self.compute_dtype)
        return ops.depthwise_conv(padded, kernel, strides=1, padding="valid")

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="tfrecap")
class LaplacianCNN(keras.Model):
    """Laplacian CNN detector: raw pixels in [0, 255] -> 2 float32 logits.

    Args:
        widths: output channels of the 5 conv units.
        batchnorm: put BatchNorm after each conv; ``False`` gives a model whose
            images do not interact, for exact per-image tests.
        synchronized_batchnorm: synchronise BatchNorm statistics across
            replicas under ``tf.distribute``.
        bn_momentum: BatchNorm moving-average momentum (Keras default 0.99;
            short CPU demos use 0.9).
        num_classes: number of logits (2: original, recaptured).
        **kwargs: standard model arguments; ``dtype`` may be a policy name such
            as ``"mixed_float16"`` and is passed to every layer but the logits.

    Reference:
        Yang, Ni, Zhao, IWDW 2016; used as the detector of Zhao et al. 2018.
    """

    def __init__(
        self,
        widths=DEFAULT_WIDTHS,
        batchnorm=True,
        synchronized_batchnorm=False,
        bn_momentum=0.99,
        num_classes=2,
        **kwargs,
    ):
        super().__init__(**kwargs)
        widths = tuple(int(w) for w in widths)
        if len(widths) != 5 or min(widths) < 1:
            raise ValueError(f"widths must be 5 positive integers, got {list(widths)}")
        self.widths = widths
        self.batchnorm = bool(batchnorm)
        self.synchronized_batchnorm = bool(synchronized_batchnorm)
        self.bn_momentum = float(bn_momentum)
        self.num_classes = int(num_classes)

        policy = self.dtype_policy
        self.laplacian = LaplacianFilter(dtype=policy, name="laplacian")
        self.convs, self.norms, self.pools = [], [], []
        for i, width in enumerate(widths, start=1):
            self.convs.append(
                layers.Conv2D(
                    width,
                    3,
                    padding="same",
                    use_bias=not self.batchnorm,
                    dtype=policy,
                    name=f"conv{i}",
                )
            )
            if self.batchnorm:
                self.norms.append(
                    layers.BatchNormalization(
                        momentum=self.bn_momentum,
                        synchronized=self.synchronized_batchnorm,
                        dtype=policy,
                        name=f"bn{i}",
                    )
                )
            if i < len(widths):
                self.pools.append(
                    layers.AveragePooling2D(
                        5, strides=2, padding="same", dtype=policy, name=f"pool{i}"
                    )
                )
        self.global_pool = layers.GlobalAveragePooling2D(dtype=policy, name="global_pool")
        # float32 logits under a mixed policy: losses, attacks and serving read
        # them (a float64 model keeps float64).
        logits_dtype = "float32" if policy.name.startswith("mixed") else policy
        self.logits = layers.Dense(self.num_classes, dtype=logits_dtype, name="logits")

    def _layer_sequence(self):
        sequence = [self.laplacian]
        for i, conv in enumerate(self.convs):
            sequence.append(conv)
            if self.batchnorm:
                sequence.append(self.norms[i])
            sequence.append(None)  # ReLU
            sequence.append(self.pools[i] if i < len(self.pools) else self.global_pool)
        sequence.append(self.logits)
        return sequence

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self._layer_sequence():
            if layer is not None:
                layer.build(shape)
                shape = layer.compute_output_shape(shape)

    def call(self, inputs, training=False):
        x = ops.cast(inputs, self.compute_dtype)
        for layer in self._layer_sequence():
            if layer is None:
                x = ops.relu(x)
            elif isinstance(layer, layers.BatchNormalization):
                x = layer(x, training=training)
            else:
                x = layer(x)
        return x

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    @property
    def input_shape(self):
        """``(None, S, S, 3)`` as built (``None`` spatial dims if built so)."""
        config = self.get_build_config() or {}
        if "input_shape" not in config:
            raise AttributeError(f"{self.name} is not built yet: it has no input shape.")
        return tuple(config["input_shape"])

    @property
    def output_shape(self):
        return (self.input_shape[0], self.num_classes)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "widths": list(self.widths),
            "batchnorm": self.batchnorm,
            "synchronized_batchnorm": self.synchronized_batchnorm,
            "bn_momentum": self.bn_momentum,
            "num_classes": self.num_classes,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        dtype = config.pop("dtype", None)
        if isinstance(dtype, dict):
            dtype = keras.dtype_policies.deserialize(dtype)
        return cls(dtype=dtype, **config)


def build_detector(
    input_shape=(64, 64, 3),
    widths=DEFAULT_WIDTHS,
    *,
    batchnorm=True,
    synchronized_batchnorm=False,
    bn_momentum=0.99,
    dtype=None,
    name="laplacian_cnn",
):
    """Builds a :class:`LaplacianCNN` with its weights created.

    Args:
        input_shape: ``(S, S, 3)``, or the patch side ``S`` alone; ``None`` (or
            ``(None, None, 3)``) for any spatial size, which global average
            pooling makes possible.
        widths: channels of the 5 conv units.
        batchnorm: see :class:`LaplacianCNN`.
        synchronized_batchnorm: see :class:`LaplacianCNN`.
        bn_momentum: see :class:`LaplacianCNN`.
        dtype: ``None`` (the global policy), ``"float32"``, ``"mixed_float16"``
            or ``"mixed_bfloat16"``.
        name: model name.

    Returns:
        A built :class:`LaplacianCNN` taking float32 pixels ``[N, S, S, 3]``
        in [0, 255] and returning float32 logits ``[N, 2]``;
        ``model.input_shape`` is ``(None, S, S, 3)``.
    """
    if input_shape is None or isinstance(input_shape, int):
        input_shape = (input_shape, input_shape, 3)
    model = LaplacianCNN(
        widths=widths,
        batchnorm=batchnorm,
        synchronized_batchnorm=synchronized_batchnorm,
        bn_momentum=bn_momentum,
        dtype=dtype,
        name=name,
    )
    model.build((None, *input_shape))
    return model
