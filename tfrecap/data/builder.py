"""The TFDS builder for recapture datasets: synthetic patches or a user's folders.

One builder, `Recapture` (TFDS name "recapture"), with one `RecaptureConfig` per
source and patch size:

* `synthetic_64`, `synthetic_128`: patches from the recapture simulator
  (`tfrecap.data.generate`), `count_per_class` per class, seeded, made with one
  `SimulatorParams` set whose version and fingerprint are part of the identity
  (so data made by another simulator is never reused).
* `synthetic_v2_64`, `synthetic_v2_128`: the same from simulator v2
  (`SimulatorParamsV2`, domain randomization at sensor resolution). There are no
  synthetic 256 or 512 configs on purpose: the bundled photos are too small, and
  upsampling them would itself be a trace a detector could learn. Those sizes,
  and the paper profile, need real data through a folder config.
* a folder config, named by the user at import time (`folder_config`): photos in
  `originals/` and `recaptured/`, tiled by `tfrecap.data.folder`.

Images are stored as PNG: JPEG would change the very traces being detected. The
builder encodes them itself (`encode_png`): up to 128 px without deflate
compression ("stored" blocks, about the raw size, 12 KB per 64-px patch), which
decodes about twice as fast as zlib level 6 and keeps the input pipeline ahead
of the model; larger tiles, where disk size matters more than decode speed per
image, use zlib level 6.
Splits are train/validation/test, 40/10/50 by scene region (synthetic) or by
source photo (folders). Build through `tfrecap.data.catalog.build_dataset`, which
handles identity and atomic replacement; this module only describes the data.
"""

from __future__ import annotations

import dataclasses
import io
import os
from collections.abc import Callable

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from tfrecap import LABEL_NAMES
from tfrecap.data import folder, tiling
from tfrecap.data.simulator.params import DEFAULT_PARAMS, SimulatorParams
from tfrecap.data.simulator.v2.params import V2_PARAMS, SimulatorParamsV2
from tfrecap.names import SPLITS, SYNTHETIC_SIZES

DEFAULT_COUNT_PER_CLASS = 3000
MIN_COUNT_PER_CLASS = 10

MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Real recapture databases cannot be downloaded automatically. Obtain one yourself,
for example ICL-COMMSP, NTU-ROSE or the BJTU-IIS set used by Zhao et al. (2018),
or use your own photos, and arrange it as two folders:

  <manual_dir>/originals/    photos taken directly of real scenes
  <manual_dir>/recaptured/   photos of those (or other) images shown on a screen

Files may sit at any depth and be JPEG, PNG, TIFF or BMP (any letter case). An
original and its recapture with the same relative path (extension aside) are kept
in the same split. Then run, for example:

  tfrecap data import --originals <manual_dir>/originals \\
      --recaptured <manual_dir>/recaptured --size 256 --dataset my_photos_256
"""


@dataclasses.dataclass(eq=False)
class RecaptureConfig(tfds.core.BuilderConfig):
    """Configuration of one recapture dataset.

    Attributes:
        kind: "synthetic" or "folder".
        size: patch size S (the images are S×S×3).
        count_per_class: synthetic only, patches per class over all splits.
        seed: synthetic generation seed, or the folder split seed.
        originals: folder config, folder of originals (default `manual_dir/originals`).
        recaptured: folder config, folder of recaptures (default `manual_dir/recaptured`).
        max_tiles_per_image: folder config, cap on tiles kept per photo.
        simulator: synthetic only, the simulator's parameters (v1 or v2).
    """

    kind: str = "synthetic"
    size: int = 64
    count_per_class: int = DEFAULT_COUNT_PER_CLASS
    seed: int = 0
    originals: str | None = None
    recaptured: str | None = None
    max_tiles_per_image: int = folder.DEFAULT_MAX_TILES
    simulator: SimulatorParams | SimulatorParamsV2 = DEFAULT_PARAMS

    def identity(self) -> dict:
        """The values that define the data: a different value means a different dataset.

        Synthetic data is defined by the simulator that made it too: its parameters' version
        and fingerprint (`SimulatorParams.fingerprint`) are part of the identity.
        """
        out = {"kind": self.kind, "size": self.size, "seed": self.seed}
        if self.kind == "synthetic":
            out["count_per_class"] = self.count_per_class
            out["simulator_version"] = self.simulator.version
            out["simulator_fingerprint"] = self.simulator.fingerprint()
        else:
            out.update(
                originals=self.originals,
                recaptured=self.recaptured,
                max_tiles_per_image=self.max_tiles_per_image,
                tiling=tiling.RULE,
            )
        return out


def synthetic_name(size: int, version: int = 1) -> str:
    """The dataset name of synthetic data: `synthetic_{size}` (v1), `synthetic_v2_{size}`."""
    return f"synthetic_{size}" if version == 1 else f"synthetic_v{version}_{size}"


SYNTHETIC_NAMES = frozenset(synthetic_name(s, v) for s in SYNTHETIC_SIZES for v in (1, 2))


def _check_name(name: str) -> None:
    """A dataset name of the user's: letters, digits, `_`, `-` and `.`, not a built-in one."""
    if not name or not all(c.isalnum() or c in "_-." for c in name) or name[0] == ".":
        raise ValueError(f"Bad dataset name {name!r}: use letters, digits, '_', '-' and '.'")
    if name in SYNTHETIC_NAMES:
        raise ValueError(f"{name!r} is reserved for synthetic data; choose another name")


def synthetic_config(
    size: int,
    count_per_class: int = DEFAULT_COUNT_PER_CLASS,
    seed: int = 0,
    params: SimulatorParams | SimulatorParamsV2 = DEFAULT_PARAMS,
    name: str | None = None,
):
    """The synthetic config with the given count, seed and simulator parameters.

    Its name is `synthetic_{size}` for v1 parameters and `synthetic_v2_{size}` for v2 ones,
    or ``name``: a simulator variant (an ablation) under its own name, so that it never
    replaces the built-in dataset (``name`` follows the rules of an import's name).

    Raises:
        ValueError: `size` is not 64 or 128, the count is not positive, or a bad ``name``
            (one of another size or version's built-in names).
        TypeError: `params` is not a `SimulatorParams` or `SimulatorParamsV2`.
    """
    if size not in SYNTHETIC_SIZES:
        raise ValueError(
            f"Synthetic data exists only at sizes {SYNTHETIC_SIZES}; size {size} would need "
            "upsampling, itself a trace. Import real photos with `tfrecap data import` instead."
        )
    if count_per_class < MIN_COUNT_PER_CLASS:
        raise ValueError(
            f"count per class must be at least {MIN_COUNT_PER_CLASS}, so that every split "
            f"(40/10/50) gets a patch; got {count_per_class}"
        )
    if not isinstance(params, (SimulatorParams, SimulatorParamsV2)):
        raise TypeError(f"params must be a SimulatorParams or SimulatorParamsV2, got "
                        f"{type(params).__name__}")
    default_name = synthetic_name(size, params.version)
    if name is not None and name != default_name:
        _check_name(name)
    return RecaptureConfig(
        name=name or default_name,
        description=f"Simulated recaptures, {size}x{size} patches, "
        f"{count_per_class} per class, seed {seed}, simulator v{params.version} "
        f"({params.fingerprint()}).",
        kind="synthetic",
        size=size,
        count_per_class=count_per_class,
        seed=seed,
        simulator=params,
    )


def folder_config(
    name: str,
    size: int,
    originals: str | os.PathLike | None = None,
    recaptured: str | os.PathLike | None = None,
    seed: int = 0,
    max_tiles_per_image: int = folder.DEFAULT_MAX_TILES,
):
    """A folder config under the user's name.

    Args:
        name: dataset (config) name; letters, digits, `_`, `-` and `.`.
        size: tile size S. Training takes 64, 128, 256 or 512 (what `data import --size`
            offers); any S >= 8 is accepted here, for tests and experiments.
        originals: folder of originals; None means `manual_dir/originals`.
        recaptured: folder of recaptures; None means `manual_dir/recaptured`.
        seed: seed of the split by source photo.
        max_tiles_per_image: cap on tiles per photo.

    Raises:
        ValueError: a bad name (or a synthetic config's name) or size.
    """
    _check_name(name)
    if size < 8:
        raise ValueError(f"tile size must be at least 8, got {size}")
    if max_tiles_per_image < 1:
        raise ValueError(f"max tiles per image must be positive, got {max_tiles_per_image}")

    def resolved(path):
        return None if path is None else str(os.path.abspath(os.path.expanduser(path)))

    return RecaptureConfig(
        name=name,
        description=f"Photos imported from folders, {size}x{size} tiles.",
        kind="folder",
        size=size,
        seed=seed,
        originals=resolved(originals),
        recaptured=resolved(recaptured),
        max_tiles_per_image=max_tiles_per_image,
    )


def encode_png(image: np.ndarray, size: int) -> bytes:
    """Losslessly encode an S×S×3 uint8 patch as PNG (see the module doc for the level).

    Raises:
        ValueError: the patch has the wrong shape or dtype.
    """
    if image.shape != (size, size, 3) or image.dtype != np.uint8:
        raise ValueError(
            f"expected a uint8 patch of shape {(size, size, 3)}, got {image.dtype} {image.shape}"
        )
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "PNG", compress_level=0 if size <= 128 else 6)
    return buf.getvalue()


class _LocalDatasetInfo(tfds.core.DatasetInfo):
    """DatasetInfo of a dataset that only ever exists locally.

    TFDS looks for pre-computed info in its GCS bucket whenever a builder is made for a
    dataset that is not built yet; with GCS disabled (the default offline) that lookup
    still creates an empty temporary directory and never removes it, one per builder.
    """

    def initialize_from_bucket(self) -> None:
        return None


class Recapture(tfds.core.GeneratorBasedBuilder):
    """Original photos vs re-photographs of a screen, as S×S PNG patches."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    BUILDER_CONFIGS = [synthetic_config(64), synthetic_config(128),
                       synthetic_config(64, params=V2_PARAMS),
                       synthetic_config(128, params=V2_PARAMS)]
    MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS

    # Set by `catalog.build_dataset` before `download_and_prepare`; not part of the data.
    progress: Callable[[int], None] | None = None
    workers: int | None = None
    scan: folder.ScanReport | None = None
    warn: Callable[[str], None] | None = None

    def _create_builder_config(self, builder_config, version):
        # TFDS refuses a config object named like a registered one unless it is
        # that very object; ours carry count and seed, so `synthetic_64` with another
        # count is legitimate. The catalog checks identity on disk instead.
        if isinstance(builder_config, RecaptureConfig):
            return builder_config
        return super()._create_builder_config(builder_config, version)

    # TFDS prints where it builds; that is our hidden temp dir, so the catalog
    # reports the final place instead.
    def _log_download_bytes(self) -> None:
        pass

    def _log_download_done(self) -> None:
        pass

    def _info(self) -> tfds.core.DatasetInfo:
        # DatasetInfo is built by hand: `dataset_info_from_configs` expects the
        # builder in its own package folder with README/CITATIONS beside it.
        size = self.builder_config.size
        return _LocalDatasetInfo(
            builder=self,
            description=self.builder_config.description,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(size, size, 3), encoding_format="png"),
                    "label": tfds.features.ClassLabel(names=list(LABEL_NAMES)),
                    "source": tfds.features.Text(),
                    "region": tfds.features.Text(),
                    "capture_id": tfds.features.Text(),
                }
            ),
            supervised_keys=("image", "label"),
            metadata=tfds.core.MetadataDict(self.builder_config.identity()),
            homepage="https://arxiv.org/abs/1803.11157",
            citation=(
                "@article{zhao2018security, title={Security Consideration for Deep "
                "Learning-Based Image Forensics}, author={Zhao, Wei and Yang, Pengpeng and "
                "Ni, Rongrong and Zhao, Yao and Wu, Haorui}, journal={IEICE Transactions on "
                "Information and Systems}, year={2018}}"
            ),
        )

    def _split_generators(self, dl_manager):
        config = self.builder_config
        if config.kind == "synthetic":
            return {split: self._generate_examples(split=split) for split in SPLITS}
        scan = self.scan
        if scan is None:
            manual = dl_manager.manual_dir
            scan = folder.scan_folders(
                config.originals or os.path.join(manual, "originals"),
                config.recaptured or os.path.join(manual, "recaptured"),
                config.size,
                workers=self.workers,
                warn=self.warn,
            )
        splits = folder.assign_splits(scan.records, config.seed)
        # TFDS cannot write a split without examples; a tiny folder may leave one empty.
        return {
            split: self._generate_examples(records=records)
            for split, records in splits.items()
            if records
        }

    def _generate_examples(self, split=None, records=None):
        """Yields `(key, example)`: a synthetic split, or the tiles of some photos."""
        if records is None:
            yield from self._generate_synthetic(split)
        else:
            yield from self._generate_tiles(records)

    def _generate_synthetic(self, split):
        from tfrecap.data import generate  # the simulator is heavy; only synth needs it

        config = self.builder_config
        examples = generate.generate_split(
            config.size,
            config.count_per_class,
            config.seed,
            split,
            workers=self.workers,
            progress=self.progress,
            params=config.simulator,
        )
        for i, ex in enumerate(examples):
            yield (
                f"{split}/{i:07d}",
                {
                    "image": encode_png(ex.image, config.size),
                    "label": int(ex.label),
                    "source": ex.source,
                    "region": ex.region,
                    "capture_id": ex.capture_id,
                },
            )

    def _generate_tiles(self, records):
        config = self.builder_config
        tiles = folder.iter_tiles(
            records,
            config.size,
            config.max_tiles_per_image,
            workers=self.workers,
            progress=self.progress,
        )
        for record, y, x, tile in tiles:
            region = f"{record.source}#y{y}x{x}"
            yield (
                region,
                {
                    "image": encode_png(tile, config.size),
                    "label": record.label,
                    "source": record.source,
                    "region": region,
                    "capture_id": record.source,
                },
            )
