"""Build, locate and load recapture datasets under a data dir.

A dataset lives in `DATA_DIR/recapture/NAME/VERSION/` (the TFDS layout), with our
`tfrecap.json` beside TFDS's own `dataset_info.json`.

**Identity.** Size, count per class, seed and the simulator's parameters (their
version and fingerprint; synthetic), or the source folders, a fingerprint of their
files (path, size, mtime), the split seed and the tile cap (folders) define a dataset.
They are written to `tfrecap.json`. A build whose identity matches the one on disk
reuses it ("already built"); any difference, or a dataset without `tfrecap.json`, is
rebuilt, and the message says what changed.

**Atomicity.** Every build goes to a fresh hidden temp dir inside DATA_DIR (same
file system), where TFDS itself writes to an `.incomplete` dir and renames it. Only
a complete build, with `tfrecap.json` written, is swapped in: the old version dir
is renamed aside, the new one renamed into place, the old one deleted. A build
that fails or is interrupted deletes its temp dir and leaves the old dataset as it
was. (A hard kill can leave a `.building-*` dir behind; it is never read.)
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

import tensorflow_datasets as tfds

from tfrecap import __version__, jsonio
from tfrecap.data import folder, tiling
from tfrecap.data.builder import SPLITS, SYNTHETIC_SIZES, Recapture, RecaptureConfig

BUILDER_NAME = "recapture"
IDENTITY_FILE = "tfrecap.json"
SCHEMA_VERSION = 1
DEFAULT_NUM_SHARDS = 8


class DatasetConflictError(ValueError):
    """A build would replace a dataset of another kind (an import with synthetic data, or the
    reverse) under the same name: refused unless forced, so that a name typed twice does not
    throw away an import."""


class DatasetNotFoundError(FileNotFoundError):
    """The dataset is not built; the message names the command that builds it."""


@dataclasses.dataclass(frozen=True)
class BuildResult:
    """What `build_dataset` did.

    Attributes:
        path: the dataset's version dir.
        status: "built", "rebuilt" or "already built".
        message: one line for the user.
        scan: the folder scan report (folder configs only).
    """

    path: Path
    status: str
    message: str
    scan: folder.ScanReport | None = None


def dataset_dir(data_dir: str | os.PathLike, dataset: str) -> Path:
    """The version dir of a dataset (whether or not it exists)."""
    return Path(data_dir).expanduser() / BUILDER_NAME / dataset / str(Recapture.VERSION)


def build_command_hint(dataset: str, data_dir: str | os.PathLike) -> str:
    """The command that builds `dataset`, for error messages."""
    prefixes = {"synthetic_v2_": " --simulator v2", "synthetic_": ""}
    prefix = next((p for p in prefixes if dataset.startswith(p)
                   and dataset[len(p):].isdigit()), None)
    if prefix is not None:
        flag = prefixes[prefix]
        size = int(dataset[len(prefix) :])
        if size in SYNTHETIC_SIZES:
            return (f"tfrecap data synth --size {size}{flag} --count 3000 "
                    f"--data-dir {data_dir}")
        return (
            f"synthetic data exists only at sizes {SYNTHETIC_SIZES}; import real photos with "
            f"tfrecap data import --originals DIR --recaptured DIR --size {size} "
            f"--dataset NAME --data-dir {data_dir}"
        )
    return (
        "tfrecap data import --originals DIR --recaptured DIR --size S "
        f"--dataset {dataset} --data-dir {data_dir}"
    )


def list_datasets(data_dir: str | os.PathLike) -> list[str]:
    """Names of the complete datasets in a data dir, sorted."""
    root = Path(data_dir).expanduser() / BUILDER_NAME
    if not root.is_dir():
        return []
    return sorted(
        p.name
        for p in root.iterdir()
        if not p.name.startswith(".")
        and (dataset_dir(data_dir, p.name) / "dataset_info.json").exists()
    )


def read_metadata(data_dir: str | os.PathLike, dataset: str) -> dict | None:
    """The dataset's `tfrecap.json` (identity, shard sizes, scan summary), or None."""
    path = dataset_dir(data_dir, dataset) / IDENTITY_FILE
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def imported_folders(data_dir: str | os.PathLike, dataset: str) -> tuple[Path, Path]:
    """The ``(originals, recaptured)`` folders that ``tfrecap data import`` read to build
    ``dataset``, as its identity records them: the photos behind a folder dataset, whole.

    Raises:
        DatasetNotFoundError: ``dataset`` is not built in ``data_dir``.
        ValueError: it is not a folder dataset (synthetic data has no photos), or a recorded
            folder is gone; the message names it.
    """
    meta = read_metadata(data_dir, dataset)
    if meta is None:
        raise DatasetNotFoundError(
            f"dataset {dataset!r} is not built in {data_dir}; import it with `tfrecap data "
            f"import --originals DIR --recaptured DIR --dataset {dataset}`")
    identity = meta.get("identity", {})
    if identity.get("kind") != "folder":
        raise ValueError(
            f"dataset {dataset!r} is {identity.get('kind', 'unknown')} data, not photos "
            "imported with `tfrecap data import`: it has no photo folders")
    folders = []
    for role in ("originals", "recaptured"):
        folder = Path(identity.get(role) or "")
        if not identity.get(role) or not folder.is_dir():
            raise ValueError(f"dataset {dataset!r} was imported from the {role} folder "
                             f"{str(folder)!r}, which is not there any more")
        folders.append(folder)
    return folders[0], folders[1]


def load_builder(data_dir: str | os.PathLike, dataset: str) -> tfds.core.DatasetBuilder:
    """Load a built dataset's builder from its directory (no builder code needed).

    Raises:
        DatasetNotFoundError: the dataset is not built; the message says how to build it.
    """
    path = dataset_dir(data_dir, dataset)
    if not (path / "dataset_info.json").exists():
        known = list_datasets(data_dir)
        have = f" Built datasets there: {', '.join(known)}." if known else ""
        raise DatasetNotFoundError(
            f"Dataset {dataset!r} is not built in {Path(data_dir).expanduser()}.{have} "
            f"Build it with: {build_command_hint(dataset, data_dir)}"
        )
    return tfds.builder_from_directory(os.fspath(path))


def shard_paths(builder: tfds.core.DatasetBuilder, split: str) -> list[str]:
    """The TFRecord shard files of one split, in order.

    Raises:
        KeyError: the split does not exist (a tiny folder import may lack one).
    """
    if split not in builder.info.splits:
        raise KeyError(
            f"Dataset {builder.builder_config.name if builder.builder_config else builder.name!r} "
            f"has no {split!r} split (it has: {', '.join(builder.info.splits)})"
        )
    return [os.fspath(p) for p in builder.info.splits[split].filepaths]


def identity_of(config: RecaptureConfig, scan: folder.ScanReport | None = None) -> dict:
    """The identity a build of `config` would record (folders: with their fingerprint).

    Raises:
        ValueError: a folder config without both folders.
        folder.FolderImportError: a folder is missing or empty.
    """
    identity = config.identity()
    if config.kind == "folder":
        if not (config.originals and config.recaptured):
            raise ValueError("a folder config needs both folders to be built here")
        identity["fingerprint"] = (
            scan.fingerprint if scan else folder.fingerprint(config.originals, config.recaptured)
        )
    return identity


def is_built(config: RecaptureConfig, data_dir: str | os.PathLike) -> bool:
    """Whether `data_dir` holds a complete dataset with exactly this identity (cheap)."""
    meta = read_metadata(data_dir, config.name)
    complete = (dataset_dir(data_dir, config.name) / "dataset_info.json").exists()
    return complete and meta is not None and meta.get("identity") == identity_of(config)


def _describe_change(old: dict | None, new: dict) -> str:
    if old is None:
        return "it has no identity record"
    changed = [f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in new if old.get(k) != new.get(k)]
    return ", ".join(changed) or "its identity differs"


def _num_shards(config: RecaptureConfig, scan: folder.ScanReport | None, wanted: int) -> int:
    """Shards per split: `wanted`, but never more than the smallest split has examples."""
    if config.kind == "synthetic":
        from tfrecap.data import generate

        smallest = 2 * min(generate.split_counts(config.count_per_class).values())
    else:
        splits = folder.assign_splits(scan.records, config.seed)
        sizes = [
            sum(
                len(
                    tiling.tile_positions(
                        r.height, r.width, config.size, config.max_tiles_per_image
                    )
                )
                for r in records
            )
            for records in splits.values()
            if records
        ]
        smallest = min(sizes)
    return max(1, min(wanted, smallest))


def _swap_in(built: Path, target: Path) -> None:
    """Replace `target` by `built` with two renames; on failure put the old one back."""
    target.parent.mkdir(parents=True, exist_ok=True)
    trash = None
    if target.exists():
        trash = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        target.rename(trash)
    try:
        built.rename(target)
    except BaseException:
        if trash is not None:
            trash.rename(target)
        raise
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)


def build_dataset(
    config: RecaptureConfig,
    data_dir: str | os.PathLike,
    *,
    num_shards: int = DEFAULT_NUM_SHARDS,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    warn: Callable[[str], None] | None = None,
    scan: folder.ScanReport | None = None,
    force: bool = False,
) -> BuildResult:
    """Build a dataset, or reuse it when the one on disk has the same identity.

    Args:
        config: from `builder.synthetic_config` or `builder.folder_config` (with both
            folders set).
        data_dir: the data dir.
        num_shards: TFRecord shards per split (capped by the smallest split's size),
            so that there are files to interleave and to auto-shard across workers.
        workers: simulator processes or image-decoding threads.
        progress: called with the number of examples generated (synthetic) or photos
            tiled (folders).
        warn: receives one line per skipped or converted file (folders).
        scan: a folder scan already made with `folder.scan_folders` (avoids a rescan).
        force: rebuild even when the identity matches.

    Returns:
        What was done, with a one-line message.

    Raises:
        folder.FolderImportError: a folder is missing, empty or has no usable image.
        ValueError: a folder config without both folders.
    """
    data_dir = Path(data_dir).expanduser()
    target = dataset_dir(data_dir, config.name)
    identity = identity_of(config, scan)
    old = read_metadata(data_dir, config.name)
    exists = (target / "dataset_info.json").exists()
    if exists and old is not None and old.get("identity") == identity and not force:
        return BuildResult(
            target, "already built", f"{config.name}: already built in {target}", scan
        )
    old_kind = (old or {}).get("identity", {}).get("kind")
    if exists and old_kind is not None and old_kind != config.kind and not force:
        raise DatasetConflictError(
            f"{config.name!r} in {target} holds {old_kind} data, and this build is "
            f"{config.kind}: choose another --dataset name, or pass --force to replace it"
        )
    if config.kind == "folder" and scan is None:
        scan = folder.scan_folders(
            config.originals, config.recaptured, config.size, workers=workers, warn=warn
        )
        identity["fingerprint"] = scan.fingerprint  # what was actually read

    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".building-{config.name}-", dir=data_dir))
    try:
        builder = Recapture(config=config, data_dir=os.fspath(tmp))
        builder.progress = progress
        builder.workers = workers
        builder.scan = scan
        builder.warn = warn
        builder.download_and_prepare(
            download_dir=os.fspath(tmp / "downloads"),
            download_config=tfds.download.DownloadConfig(
                num_shards=_num_shards(config, scan, num_shards)
            ),
        )
        built = tmp / BUILDER_NAME / config.name / str(Recapture.VERSION)
        shards = {
            split: {Path(p).name: Path(p).stat().st_size for p in shard_paths(builder, split)}
            for split in SPLITS
            if split in builder.info.splits
        }
        metadata = {
            "schema_version": SCHEMA_VERSION,
            "tfrecap_version": __version__,
            "dataset": config.name,
            "identity": identity,
            "shards": shards,
            "examples": {s: builder.info.splits[s].num_examples for s in shards},
        }
        if config.kind == "synthetic":  # what the fingerprint in the identity stands for
            metadata["simulator"] = config.simulator.to_dict()
        if scan is not None:
            metadata["import"] = {"summary": scan.summary(), "counts": scan.counts()}
        jsonio.write_json(built / IDENTITY_FILE, metadata, sort_keys=True)
        _swap_in(built, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    if exists:
        why = _describe_change(old and old.get("identity"), identity)
        status, message = "rebuilt", f"{config.name}: rebuilt in {target} ({why})"
        if force and old is not None and old.get("identity") == identity:
            message = f"{config.name}: rebuilt in {target} (forced)"
    else:
        status, message = "built", f"{config.name}: built in {target}"
    return BuildResult(target, status, message, scan)
