"""Recapture datasets: offline simulator, TFDS builder, folder import, tf.data pipeline."""
