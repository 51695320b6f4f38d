"""Detector and secure training model (Yang et al. 2016; Zhao et al. 2018, Sec. 3.2)."""

from tfrecap.models.adversarial_training import (
    PenaltyTerms,
    cross_entropy,
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

__all__ = [
    "DEFAULT_WIDTHS",
    "LAPLACIAN_KERNEL",
    "LaplacianCNN",
    "LaplacianFilter",
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
