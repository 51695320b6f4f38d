"""Detector and secure training model (Yang et al. 2016; Zhao et al. 2018, Sec. 3.2)."""

from tfrecap.models.adversarial_training import (
    PENALTY_REFERENCE_SIZE,
    PenaltyTerms,
    fgsm_fusion,
    fused_batch_loss,
    fusion_weights,
    input_gradient_penalty,
    replica_fusion_count,
    sample_eps,
)
from tfrecap.models.laplacian_cnn import (
    DEFAULT_WIDTHS,
    LAPLACIAN_KERNEL,
    LaplacianCNN,
    LaplacianFilter,
    build_detector,
)
from tfrecap.models.secure_model import SecureForensicModel
from tfrecap.ops.losses import cross_entropy  # J of eq. 6, re-exported for the model tests

__all__ = [
    "DEFAULT_WIDTHS",
    "LAPLACIAN_KERNEL",
    "LaplacianCNN",
    "LaplacianFilter",
    "PENALTY_REFERENCE_SIZE",
    "PenaltyTerms",
    "SecureForensicModel",
    "build_detector",
    "cross_entropy",
    "fgsm_fusion",
    "fused_batch_loss",
    "fusion_weights",
    "input_gradient_penalty",
    "replica_fusion_count",
    "sample_eps",
]
