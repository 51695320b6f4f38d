"""tfrecap: secure recaptured-image forensics (Zhao et al. 2018) in Keras 3."""

__version__ = "0.1.0"

# Label indices used everywhere: in the datasets, the model's two logits,
# the attacks and the serving signatures.
LABEL_NAMES = ("original", "recaptured")
