"""A picture of originals beside recaptures: people would rather look than read."""

from pathlib import Path

from tfrecap import LABEL_NAMES


def save_preview_grid(examples, output: Path, title: str) -> None:
    """A row of originals over a row of recaptures, pixels shown 1:1 (no smoothing).

    Args:
        examples: ``{"original": [(image, source), ...], "recaptured": [...]}``, as
            returned by :func:`tfrecap.data.pipeline.take_examples`.
        output: PNG path.
        title: the figure title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = max(len(v) for v in examples.values())
    fig, axes = plt.subplots(2, n, figsize=(1.8 * n, 4.2), squeeze=False)
    for row, name in enumerate(LABEL_NAMES):
        for col in range(n):
            ax = axes[row][col]
            ax.set_xticks([])
            ax.set_yticks([])
            if col < len(examples[name]):
                image, source = examples[name][col]
                ax.imshow(image, interpolation="nearest")
                ax.set_title(Path(source).name[:18], fontsize=6)
            else:
                ax.axis("off")
        axes[row][0].set_ylabel(name, fontsize=10)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=150)
    plt.close(fig)
