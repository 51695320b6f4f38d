"""SecureForensicModel: a detector trained with the secure step of Zhao et al. 2018, or with
PGD-AT, TRADES or fast FGSM.

One ``train_step`` for every defence; ``method`` picks it:

* ``baseline`` and ``zhao2018``: below;
* ``pgd_at`` (Madry et al. 2018), ``trades`` (Zhang et al. 2019) and ``fast_fgsm`` (Wong et
  al. 2020, optionally with GradAlign): ``_adversarial_training_step``, built from the free
  functions of :mod:`tfrecap.models.defences`. Their inner attack runs on the model as
  deployed (``attack_batchnorm``), from a start drawn per (seed, step, example), and every
  term is reduced over the global batch, so a mirrored step equals one device's.

The paper's step (DESIGN.md, "The secure train_step"):

1. FGSM batch fusion (eqs. 2, 7): the first k images of the batch become FGSM
   images of the current weights, eps_i ~ U[eps_min, eps_max] per image.
2. Input-gradient penalty (eqs. 5, 6): ``L_i = J_i + lambda (S / 64) ||grad_x J_i||_2``.
   The factor S / 64 (``sqrt(H W) / 64`` in general) is ours: behind global average
   pooling the plain norm scales as 1 / S, so without it lambda would be 8x weaker at
   S = 512 than at S = 64. With it one lambda means the same at every patch size, and at
   64 x 64 (the demo) the penalty is exactly the paper's plain norm
   (:func:`input_gradient_penalty`).
3. Batch loss (eq. 7): ``(sum_clean L_i + alpha sum_adv L_i) / m``.

BatchNorm in training mode couples the images of a batch: the penalty's
per-image gradient is ``grad_{x_i} sum_j J_j``, which is close to but not
exactly ``grad_{x_i} J_i`` (exact without BatchNorm). The FGSM pass runs on the
k images it attacks only (half the cost at k = m/2). By default
(``attack_batchnorm="inference"``) it attacks the model as it will be deployed:
BatchNorm uses its moving statistics. DESIGN.md made the pass in training mode
(``stateless_call``, batch statistics); measured on the demo, FGSM computed that
way is a much weaker attack on the deployed model than FGSM in inference mode
(ε = 3: 86 % vs 40 % of the adversarial images still correct, same weights), so
training against it teaches robustness to an attack nobody deploys. That mode
is kept as ``attack_batchnorm="batch"``. Moving statistics update once per step,
by the training pass, in both modes. Sample weights are not supported.

With ``penalty_weight=0`` and ``fusion_count=0`` the step is Yang's baseline,
exactly Keras' own ``fit`` step with ``SparseCategoricalCrossentropy
(from_logits=True)``; the fusion pass and the inner tape are then left out at
trace time, so the baseline pays for neither.

Usage::

    detector = build_detector(64)
    model = SecureForensicModel(detector, penalty_weight=0.1, fusion_count=32)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), jit_compile=False)
    model.fit(train_ds, validation_data=val_ds)

``compile`` takes no ``loss`` or ``metrics``: the loss is eq. 7 and the
metrics are built in. ``jit_compile``: off on CPU (XLA measurably slows these
steps there) and under ``tf.distribute``; on GPU Keras' ``"auto"`` turns it on.

Logged metrics (``model.metrics``):

* ``loss`` - eq. 7 divided by m, plus any regularization losses;
* ``cross_entropy`` - mean J over the fused batch (clean and adversarial);
* ``penalty`` - mean ``(S / 64) ||grad_x J||_2`` over the fused batch, *not*
  multiplied by lambda (comparable across lambdas and patch sizes); only when
  ``penalty_weight > 0``;
* ``accuracy`` - on the clean images of the fused batch;
* ``adv_accuracy`` - on its FGSM images; only when ``fusion_count > 0``.

Validation (``test_step``) runs on clean images in inference mode and reports
``loss`` (mean of eq. 5: ``J + lambda * penalty``), ``cross_entropy``,
``accuracy`` and, when ``penalty_weight > 0``, ``penalty``. That costs one
input-gradient pass (no second-order term, about 3 forward passes), so that
``val_loss`` means what ``loss`` means; without BatchNorm coupling in inference
mode it is the exact per-image norm.

Mixed precision: give the detector a ``mixed_float16`` policy; this model takes
the same policy, so ``compile()`` wraps the optimizer in a
``LossScaleOptimizer``. The step scales each loss inside its tape, unscales the
input gradient in float32 and lets ``optimizer.apply`` unscale the weight
gradients and skip non-finite steps. A skipped step (float16 overflow, e.g.
the first step at the initial scale) is left out of the ``loss`` and
``penalty`` means; in float32 a NaN is reported as is.

Distribution: every term is reduced over the global batch
(``tf.nn.compute_average_loss``); each replica fuses its own first
``k * local / global`` images (see :func:`replica_fusion_count`). BatchNorm is
per replica unless the detector uses ``synchronized_batchnorm``. All replicas
draw the same eps sequence (one mirrored seed state), each for its own
images.

Export: only ``call`` (logits) is traced by ``model.export`` or
``detector.export``; the attack and the training step are not in the graph.
"""

import random

import keras
import tensorflow as tf

from tfrecap.models.adversarial_training import (
    fgsm_fusion,
    fused_batch_loss,
    input_gradient_penalty,
    replica_fusion_count,
    sample_eps,
)
from tfrecap.models.defences import (
    GRAD_ALIGN_STREAM,
    START_STREAM,
    TRADES_START_STD,
    default_step_size,
    example_noise,
    global_example_index,
    grad_align_cosine,
    pgd_examples,
    trades_examples,
    trades_loss,
)
from tfrecap.names import (
    ADVERSARIAL_TRAINING_METHODS,
    ATTACK_BATCHNORM,
    DEFENCE_METHODS,
    resolve_defence_method,
)
from tfrecap.ops.losses import cross_entropy
from tfrecap.ops.steps import clip_pixels


@keras.saving.register_keras_serializable(package="tfrecap")
class SecureForensicModel(keras.Model):
    """A detector with the secure training step of Zhao et al. 2018 (Sec. 3.2).

    Args:
        detector: a Keras model mapping float32 pixels in [0, 255] to logits,
            normally :func:`tfrecap.models.build_detector`'s LaplacianCNN.
        penalty_weight: lambda of eq. 5 (the paper does not give it), weighing the
            size-normalized norm ``(S / 64) ||grad_x J_i||_2``, so that one lambda means
            the same at every patch size S; 0 turns the penalty off.
        fusion_count: k of eq. 7, the number of leading images of each batch
            replaced by FGSM images (paper: 32 of m = 64); 0 turns fusion off.
        fusion_weight: alpha of eq. 7, the weight of the FGSM images' losses
            (paper: 0.2).
        eps_min: lower bound of the per-image FGSM strength, pixel levels.
        eps_max: upper bound (paper: eps in [1, 5]).
        seed: seed of the ``keras.random.SeedGenerator`` that draws eps.
        attack_batchnorm: how BatchNorm normalises the FGSM pass: "inference"
            (moving statistics, the deployed model; default) or "batch" (the
            attacked images' own batch statistics, through ``stateless_call``).
        **kwargs: standard model arguments. ``dtype`` defaults to the
            detector's policy, which decides loss scaling in ``compile``.
    """

    def __init__(
        self,
        detector,
        penalty_weight=0.0,
        fusion_count=0,
        fusion_weight=0.2,
        eps_min=1.0,
        eps_max=5.0,
        seed=None,
        attack_batchnorm="inference",
        method=None,
        attack_eps=2.0,
        attack_steps=5,
        attack_step_size=0.0,
        clean_fraction=0.0,
        trades_beta=6.0,
        grad_align_weight=0.0,
        random_start=True,
        early_stop_tau=-1,
        **kwargs,
    ):
        kwargs.setdefault("dtype", detector.dtype_policy)
        super().__init__(**kwargs)
        if penalty_weight < 0:
            raise ValueError(f"penalty_weight (lambda) must be >= 0, got {penalty_weight}")
        if fusion_count < 0:
            raise ValueError(f"fusion_count (k) must be >= 0, got {fusion_count}")
        if fusion_weight < 0:
            raise ValueError(f"fusion_weight (alpha) must be >= 0, got {fusion_weight}")
        if not 0 <= eps_min <= eps_max:
            raise ValueError(f"need 0 <= eps_min <= eps_max, got {eps_min}, {eps_max}")
        if attack_batchnorm not in ATTACK_BATCHNORM:
            raise ValueError(
                f"attack_batchnorm must be one of {ATTACK_BATCHNORM}, "
                f"got {attack_batchnorm!r}"
            )
        self.detector = detector
        self.penalty_weight = float(penalty_weight)
        self.fusion_count = int(fusion_count)
        self.fusion_weight = float(fusion_weight)
        self.eps_min = float(eps_min)
        self.eps_max = float(eps_max)
        self.seed = seed
        self.attack_batchnorm = attack_batchnorm
        method = resolve_defence_method(method, penalty_weight, fusion_count)
        if method not in DEFENCE_METHODS or method == "auto":
            raise ValueError(f"method must be one of {DEFENCE_METHODS[1:]}, got {method!r}")
        if method != "zhao2018" and (penalty_weight > 0 or fusion_count > 0):
            raise ValueError(f"penalty_weight and fusion_count belong to method zhao2018, "
                             f"not {method!r}")
        if method in ADVERSARIAL_TRAINING_METHODS and not attack_eps > 0:
            raise ValueError(f"attack_eps must be > 0 for method {method}, got {attack_eps}")
        if attack_steps < 0 or attack_step_size < 0 or trades_beta < 0 or grad_align_weight < 0:
            raise ValueError("attack_steps, attack_step_size, trades_beta and grad_align_weight "
                             "must be >= 0")
        if method == "trades" and attack_steps < 1:
            raise ValueError("method trades needs attack_steps >= 1")
        if not 0 <= clean_fraction < 1:
            raise ValueError(f"clean_fraction must be in [0, 1), got {clean_fraction}")
        if early_stop_tau < -1:
            raise ValueError(f"early_stop_tau must be -1 (off) or >= 0, got {early_stop_tau}")
        self.method = method
        self.attack_eps = float(attack_eps)
        self.attack_steps = int(attack_steps)
        self.attack_step_size = float(attack_step_size)
        self.clean_fraction = float(clean_fraction)
        self.trades_beta = float(trades_beta)
        self.grad_align_weight = float(grad_align_weight)
        # A fixed name: its variable path is checked when a checkpoint is restored
        # (tfrecap.training.make_checkpoint), and Keras would otherwise number it by how many
        # generators the process made before.
        self.seed_generator = keras.random.SeedGenerator(seed, name="fusion_seed")
        # The adversarial-training methods draw their noise statelessly, keyed by (seed, step,
        # example): no state to checkpoint, and the same draws on one device and on many. With
        # seed=None the key is drawn here and not saved: a model rebuilt from its config then
        # draws other noise (pipelines always give a seed, [train] seed).
        self._noise_seed = int(seed) if seed is not None else random.randrange(2**31)
        self.random_start = bool(random_start)
        # pgd_at: each image's inner attack stops this many steps after it is first
        # misclassified (friendly adversarial training); -1: Madry's PGD, never stopped.
        self.early_stop_tau = int(early_stop_tau)

        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.cross_entropy_tracker = keras.metrics.Mean(name="cross_entropy")
        self.penalty_tracker = keras.metrics.Mean(name="penalty")
        self.accuracy_tracker = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        self.adv_accuracy_tracker = keras.metrics.SparseCategoricalAccuracy(name="adv_accuracy")
        self.kl_tracker = keras.metrics.Mean(name="kl")
        self.grad_align_tracker = keras.metrics.Mean(name="grad_align")

        build_config = detector.get_build_config() if detector.built else None
        if build_config and "input_shape" in build_config:
            self.build(build_config["input_shape"])

    @property
    def uses_penalty(self):
        return self.penalty_weight > 0

    @property
    def uses_fusion(self):
        return self.fusion_count > 0

    def build(self, input_shape):
        if not self.detector.built:
            self.detector.build(input_shape)

    def call(self, inputs, training=False):
        return self.detector(inputs, training=training)

    @property
    def is_adversarial_training(self):
        """pgd_at, trades or fast_fgsm: the step trains on an inner attack of budget attack_eps."""
        return self.method in ADVERSARIAL_TRAINING_METHODS

    @property
    def uses_grad_align(self):
        return self.method == "fast_fgsm" and self.grad_align_weight > 0

    @property
    def inner_step_size(self):
        """Pixel levels per inner-attack step: attack_step_size, or the method's default."""
        return self.attack_step_size or default_step_size(
            self.method, self.attack_eps, self.attack_steps)

    @property
    def metrics(self):
        if self.is_adversarial_training:
            return self._adversarial_training_metrics()
        trackers = [self.loss_tracker, self.cross_entropy_tracker]
        if self.uses_penalty:
            trackers.append(self.penalty_tracker)
        trackers.append(self.accuracy_tracker)
        if self.uses_fusion:
            trackers.append(self.adv_accuracy_tracker)
        return trackers

    def _adversarial_training_metrics(self):
        trackers = [self.loss_tracker, self.cross_entropy_tracker]
        if self.method == "trades":
            trackers.append(self.kl_tracker)
        if self.uses_grad_align:
            trackers.append(self.grad_align_tracker)
        if self.method == "trades" or self.clean_fraction > 0:
            trackers.append(self.accuracy_tracker)
        trackers.append(self.adv_accuracy_tracker)
        return trackers

    def _scale_loss(self, value):
        # The optimizer's own scaling: a LossScaleOptimizer under
        # mixed_float16, the identity otherwise.
        return value if self.optimizer is None else self.optimizer.scale_loss(value)

    def _overflow_mask(self, value):
        """None, or 1.0/0.0 for "value is finite" when the loss is scaled.

        The penalty comes from a gradient, so under loss scaling it overflows
        float16 exactly when the step's gradients do; the LossScaleOptimizer
        then skips the step and lowers the scale. Such a step is left out of
        the loss and penalty means (else one skipped step makes the epoch's
        loss NaN, and TerminateOnNaN stops training). Without loss scaling a
        NaN is a real problem and is reported as is.
        """
        if not isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
            return None
        return tf.cast(tf.math.is_finite(value), tf.float32)

    @staticmethod
    def _track(tracker, values, sample_weight=None, mask=None):
        if mask is None:
            tracker.update_state(values, sample_weight=sample_weight)
            return
        values = tf.where(mask > 0, values, tf.zeros_like(values))
        weight = mask if sample_weight is None else mask * tf.cast(sample_weight, tf.float32)
        tracker.update_state(values, sample_weight=weight * tf.ones_like(values))

    def _unpack(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if sample_weight is not None:
            raise ValueError("SecureForensicModel does not support sample weights.")
        return tf.cast(x, tf.float32), tf.reshape(tf.cast(y, tf.int32), [-1])

    def _attack_logits_fn(self):
        """The current model for the FGSM pass, without side effects.

        "inference": a ``training=False`` call, which reads but never updates
        BatchNorm's moving statistics. "batch": ``stateless_call`` with
        ``training=True``; BatchNorm normalises with the attacked images' batch
        statistics, and the updated moving statistics it returns are thrown away.
        """
        if self.attack_batchnorm == "inference":
            return lambda images: self.detector(images, training=False)
        trainable = [v.value for v in self.detector.trainable_variables]
        non_trainable = [v.value for v in self.detector.non_trainable_variables]

        def logits_fn(images):
            logits, _ = self.detector.stateless_call(
                trainable, non_trainable, images, training=True
            )
            return logits

        return logits_fn

    def _with_regularization(self, loss):
        """``loss`` plus the model's regularization losses (call it inside the tape); Keras
        divides them by the replica count too."""
        if self.losses:
            loss += tf.nn.scale_regularization_loss(tf.add_n(self.losses))
        return loss

    def _apply(self, tape, scaled_loss, trainable, loss, local_batch, ce):
        """Apply the step's gradients and track the loss and the cross-entropy; returns the
        overflow mask (see :meth:`_overflow_mask`) for the other trackers."""
        gradients = tape.gradient(scaled_loss, trainable)
        self.optimizer.apply(gradients, trainable)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        mask = self._overflow_mask(loss)
        # The tracker wants this replica's mean, not its share of the global mean.
        self._track(self.loss_tracker, loss * replicas, local_batch, mask)
        self.cross_entropy_tracker.update_state(ce)
        return mask

    def train_step(self, data):
        """One training step of the model's method (``method``).

        baseline and zhao2018: eq. 7 on a fused batch (Zhao et al. 2018, Sec. 3.2);
        pgd_at, fast_fgsm and trades: :meth:`_adversarial_training_step`.
        """
        x, y = self._unpack(data)
        if self.is_adversarial_training:
            return self._adversarial_training_step(x, y)
        local_batch = tf.shape(x)[0]
        count = 0
        if self.uses_fusion:
            count = replica_fusion_count(self.fusion_count, local_batch)
            eps = sample_eps(count, self.eps_min, self.eps_max, self.seed_generator)
            x = fgsm_fusion(self._attack_logits_fn(), x, y, count, eps, scale_loss=self._scale_loss)

        trainable = self.trainable_variables
        with tf.GradientTape() as tape:
            if self.uses_penalty:
                logits, ce, _, penalty = input_gradient_penalty(
                    lambda images: self.detector(images, training=True),
                    x,
                    y,
                    scale_loss=self._scale_loss,
                )
                per_image = ce + self.penalty_weight * penalty
            else:
                logits = self.detector(x, training=True)
                ce = cross_entropy(y, logits)
                per_image = ce
            loss = self._with_regularization(fused_batch_loss(per_image, count,
                                                              self.fusion_weight))
            scaled_loss = self._scale_loss(loss)
        mask = self._apply(tape, scaled_loss, trainable, loss, local_batch, ce)
        if self.uses_penalty:
            self._track(self.penalty_tracker, penalty, mask=mask)
        self.accuracy_tracker.update_state(y[count:], logits[count:])
        if self.uses_fusion:
            self.adv_accuracy_tracker.update_state(y[:count], logits[:count])
        return {m.name: m.result() for m in self.metrics}

    def _adversarial_training_step(self, x, y):
        """One step of PGD-AT, fast FGSM or TRADES (``tfrecap.models.defences``).

        The inner attack runs on the model without side effects (``attack_batchnorm``), from a
        start drawn per example, keyed by (seed, step, the example's index in the global
        batch). The training pass is one ``training=True`` call, so BatchNorm's moving
        statistics update once per step:

        * pgd_at / fast_fgsm: the first images of the batch become adversarial, the last
          ``floor(clean_fraction * n)`` stay clean (n: this replica's images, so under a
          strategy each replica keeps its own last ones clean, as it fuses its own first k
          in zhao2018); loss: the mean cross-entropy. GradAlign's
          two input gradients (fast_fgsm) are taken in inference mode, so that they measure
          the deployed model and do not update the statistics a second time.
        * trades: one pass over ``concat([x, x_adv])``; loss: ``CE(x) + beta KL(p(x) || p(x'))``.

        Every term is reduced over the global batch (``tf.nn.compute_average_loss``).
        """
        local_batch = tf.shape(x)[0]
        index = global_example_index(local_batch)
        step = self.optimizer.iterations
        # Static when known: the draws then keep their shape through the trace.
        image_shape = x.shape[1:] if x.shape[1:].is_fully_defined() else tf.shape(x)[1:]
        attack_fn = self._attack_logits_fn()
        train_fn = lambda images: self.detector(images, training=True)  # noqa: E731
        eps = self.attack_eps
        kl = cosine = None
        if self.method == "trades":
            start = TRADES_START_STD * example_noise(
                self._noise_seed, step, START_STREAM, index, image_shape, "normal")
            x_adv = trades_examples(attack_fn, x, eps, steps=self.attack_steps,
                                    step_size=self.inner_step_size, start=start,
                                    scale_loss=self._scale_loss)
            count = local_batch
        else:
            clean = tf.cast(tf.floor(self.clean_fraction * tf.cast(local_batch, tf.float32)),
                            tf.int32)
            count = local_batch - clean
            head = x[:count]
            start = None
            # Fast FGSM's random start is the method (Wong et al.); PGD-AT's can be turned off.
            if self.random_start or self.method == "fast_fgsm":
                start = eps * example_noise(self._noise_seed, step, START_STREAM, index[:count],
                                            image_shape)
            steps = 1 if self.method == "fast_fgsm" else self.attack_steps
            early_stop = (self.early_stop_tau
                          if self.method == "pgd_at" and self.early_stop_tau >= 0 else None)
            adversarial = pgd_examples(attack_fn, head, y[:count], eps, steps=steps,
                                       step_size=self.inner_step_size, start=start,
                                       scale_loss=self._scale_loss, early_stop=early_stop)
            x_train = tf.concat([adversarial, x[count:]], axis=0)
            if self.uses_grad_align:
                noise = eps * example_noise(self._noise_seed, step, GRAD_ALIGN_STREAM, index,
                                            image_shape)
                noisy = clip_pixels(x + noise)

        trainable = self.trainable_variables
        with tf.GradientTape() as tape:
            if self.method == "trades":
                logits = train_fn(tf.concat([x, x_adv], axis=0))
                clean_logits, adv_logits = logits[:local_batch], logits[local_batch:]
                per_image, ce, kl = trades_loss(clean_logits, adv_logits, y, self.trades_beta)
            else:
                logits = train_fn(x_train)
                ce = per_image = cross_entropy(y, logits)
                if self.uses_grad_align:
                    cosine = grad_align_cosine(
                        lambda images: self.detector(images, training=False), x, noisy, y,
                        scale_loss=self._scale_loss)
                    per_image = per_image + self.grad_align_weight * cosine
            loss = self._with_regularization(tf.nn.compute_average_loss(per_image))
            scaled_loss = self._scale_loss(loss)
        mask = self._apply(tape, scaled_loss, trainable, loss, local_batch, ce)
        if kl is not None:
            self.kl_tracker.update_state(kl)
            self.accuracy_tracker.update_state(y, clean_logits)
            self.adv_accuracy_tracker.update_state(y, adv_logits)
        else:
            if cosine is not None:
                self._track(self.grad_align_tracker, cosine, mask=mask)
            if self.clean_fraction > 0:
                self.accuracy_tracker.update_state(y[count:], logits[count:])
            self.adv_accuracy_tracker.update_state(y[:count], logits[:count])
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        """Clean-image validation: mean eq. 5 loss, cross-entropy, accuracy (penalty)."""
        x, y = self._unpack(data)
        if self.uses_penalty:
            logits, ce, _, penalty = input_gradient_penalty(
                lambda images: self.detector(images, training=False),
                x,
                y,
                scale_loss=self._scale_loss,
            )
            per_image = ce + self.penalty_weight * penalty
            mask = self._overflow_mask(tf.reduce_sum(penalty))
            self._track(self.penalty_tracker, penalty, mask=mask)
        else:
            logits = self.detector(x, training=False)
            ce = per_image = cross_entropy(y, logits)
            mask = None
        self._track(self.loss_tracker, per_image, mask=mask)
        self.cross_entropy_tracker.update_state(ce)
        self.accuracy_tracker.update_state(y, logits)
        logged = [self.loss_tracker, self.cross_entropy_tracker, self.accuracy_tracker]
        if self.uses_penalty:
            logged.append(self.penalty_tracker)
        return {m.name: m.result() for m in logged}

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "detector": keras.saving.serialize_keras_object(self.detector),
            "penalty_weight": self.penalty_weight,
            "fusion_count": self.fusion_count,
            "fusion_weight": self.fusion_weight,
            "eps_min": self.eps_min,
            "eps_max": self.eps_max,
            "seed": self.seed,
            "attack_batchnorm": self.attack_batchnorm,
            "method": self.method,
            "attack_eps": self.attack_eps,
            "attack_steps": self.attack_steps,
            "attack_step_size": self.attack_step_size,
            "clean_fraction": self.clean_fraction,
            "trades_beta": self.trades_beta,
            "grad_align_weight": self.grad_align_weight,
            "random_start": self.random_start,
            "early_stop_tau": self.early_stop_tau,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        detector = keras.saving.deserialize_keras_object(config.pop("detector"))
        dtype = config.pop("dtype", None)
        if isinstance(dtype, dict):
            dtype = keras.dtype_policies.deserialize(dtype)
        return cls(detector, dtype=dtype, **config)
