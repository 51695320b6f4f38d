"""The paper's published figures (Zhao et al. 2018, Sec. 4, Tables 1–3), quoted beside ours.

Nothing here was measured by tfrecap: the report prints these next to its own cells so that a
reader compares directions and gaps with the paper. The row and method names are the paper's.
"""

from __future__ import annotations

import math

PAPER_EPS = (1.0, 2.0, 3.0, 4.0, 5.0)
PAPER_TEST_N = 10_000  # "10000 original images and 10000 recaptured images" per size, 50% test

PAPER_TABLES = {
    # In percent. "llcm" is the method the paper's tables call TGSM.
    "table1": {
        "baseline": {64: 96.7, 128: 98.2, 256: 99.1, 512: 99.4},  # "Yang"
        "secure": {64: 96.6, 128: 98.1, 256: 98.5, 512: 99.0},  # "Prop"
    },
    "table2": {  # Yang's method under attack, eps = 1..5
        64: {"fgsm": (2.8, 0.9, 0.5, 0.6, 2.6), "llcm": (7.5, 5.7, 5.2, 5.3, 6.9)},
        128: {"fgsm": (1.1, 0.2, 1.4, 4.9, 6.5), "llcm": (2.9, 2.0, 3.1, 6.1, 7.5)},
        256: {"fgsm": (2.6, 3.6, 5.4, 7.5, 9.9), "llcm": (3.9, 4.9, 6.6, 8.6, 11.1)},
        512: {"fgsm": (3.3, 1.6, 0.9, 0.7, 1.0), "llcm": (4.6, 2.8, 2.2, 1.9, 2.1)},
    },
    "table3": {  # the proposed (secure) method under attack, eps = 1..5
        64: {"fgsm": (93.6, 94.5, 96.1, 96.3, 95.9), "llcm": (90.0, 91.6, 93.0, 93.3, 93.0)},
        128: {"fgsm": (95.9, 97.1, 97.8, 98.4, 98.7), "llcm": (94.5, 95.6, 96.2, 96.8, 97.1)},
        256: {"fgsm": (97.4, 98.5, 98.8, 98.9, 98.6), "llcm": (94.3, 95.1, 95.3, 95.4, 95.2)},
        512: {"fgsm": (99.2, 99.3, 99.3, 99.4, 99.3), "llcm": (98.1, 98.2, 98.3, 98.3, 98.2)},
    },
}

ROLES = {"baseline": "Yang", "secure": "Prop"}  # the paper's row names
METHODS = {"fgsm": "FGSM", "llcm": "LLCM (TGSM)"}


def paper_at(table: str, size: int, method: str, eps: float) -> float | None:
    """The paper's figure in ``table`` (``table2``/``table3``) at ``size``, ``method``, ``eps``."""
    values = PAPER_TABLES[table].get(size, {}).get(method)
    for e, v in zip(PAPER_EPS, values or (), strict=False):
        if math.isclose(e, eps):
            return v
    return None


def paper_cell(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}%"
