"""Keep TensorFlow's start-up noise off a user's terminal unless ``--verbose`` asks for it.

On a machine without a GPU, TF 2.21 prints CUDA driver lines ("Could not find cuda drivers",
``cudart_stub.cc``, ``cpu_feature_guard.cc``) to stderr while ``import tensorflow`` runs, before
``TF_CPP_MIN_LOG_LEVEL`` is read, so the variable alone does not silence them. This module sets
the variable and wraps the first import of TensorFlow: the import's C-level stderr is captured,
and every line that is not known start-up noise is written back, so a real error still shows.
The import itself stays lazy: ``--help`` and name checks never load TensorFlow.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import re
import sys
import tempfile

# Lines TensorFlow and absl print on import on a CPU-only machine; nothing a user can act on.
NOISE = re.compile(
    r"cudart_stub\.cc|cuda_platform\.cc|cuda_executor\.cc|cpu_feature_guard\.cc|"
    r"All log messages before absl::InitializeLog|To enable the following instructions|"
    r"Unable to register cu(DNN|FFT|BLAS) factory|computation placer already registered|"
    r"TF-TRT Warning|oneDNN custom operations are on"
)


def configure(verbose: bool) -> None:
    """Silence TensorFlow's logs (``verbose=False``) or leave them all on (``verbose=True``).

    Call before TensorFlow is imported; if it already is, only the log level can change.
    """
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    if "tensorflow" not in sys.modules and not any(
        isinstance(f, _QuietImportFinder) for f in sys.meta_path
    ):
        sys.meta_path.insert(0, _QuietImportFinder())


def filter_noise(text: str) -> str:
    """``text`` without the lines that are TensorFlow start-up noise."""
    return "".join(line for line in text.splitlines(keepends=True) if not NOISE.search(line))


class _QuietImportFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` with the normal finders, then runs its import with stderr captured."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "tensorflow":
            return None
        # Asked again on every lookup until the import runs: a library may only *look* for
        # TensorFlow first (importlib.util.find_spec) and import it later.
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader, self)
        return spec


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader, finder):
        self._loader = loader
        self._finder = finder

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        if self._finder in sys.meta_path:  # once imported, TensorFlow is never looked up again
            sys.meta_path.remove(self._finder)
        capture = _captured_stderr()
        try:
            with capture:
                self._loader.exec_module(module)
        finally:  # also when the import fails: its own messages must reach the user
            kept = filter_noise(capture.text())
            if kept:
                sys.stderr.write(kept)


class _captured_stderr:
    """Redirect file descriptor 2 (C and Python writes alike) to a temporary file."""

    def __enter__(self):
        sys.stderr.flush()
        self._file = tempfile.TemporaryFile(mode="w+b")
        self._saved = os.dup(2)
        os.dup2(self._file.fileno(), 2)
        return self

    def __exit__(self, *exc):
        sys.stderr.flush()
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._file.seek(0)
        self._text = self._file.read().decode("utf-8", "replace")
        self._file.close()
        return False

    def text(self) -> str:
        return getattr(self, "_text", "")
