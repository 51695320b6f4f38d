"""Simulator parameters with some fields replaced from text: ``diffuser_prob=0``.

A simulator variant (an ablation: the committed v2 with one randomization switched off) is the
committed parameters with a few fields replaced. The values arrive as text, from
``tfrecap data synth --param KEY=VALUE``, and are parsed by the type of the committed value:
a number, a flag (``true``/``false``), or a range or list written with commas
(``glare_prob=0``, ``messaging_jpeg_quality=80,95``, ``demosaics=bilinear``); ``none``
switches an optional effect off, and a range switches one on. The parameters'
own checks then apply, so a bad range fails here with the field's name.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Mapping

TRUE, FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


class ParamOverrideError(ValueError):
    """A ``KEY=VALUE`` that names no field, or whose value the field cannot take."""


def parse_assignments(items: Iterable[str]) -> dict[str, str]:
    """``["a=1", "b=2,3"]`` as ``{"a": "1", "b": "2,3"}``; a key given twice is an error."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise ParamOverrideError(f"--param {item!r}: expected KEY=VALUE, e.g. glare_prob=0")
        if key in out:
            raise ParamOverrideError(f"--param {key} is given twice ({out[key]!r}, {value!r})")
        out[key] = value
    return out


def _parse(name: str, text: str, default, optional: bool = False):
    """``text`` as a value of the type of ``default`` (the value of ``name`` it replaces);
    ``optional``: the field may be None (an effect that can be off)."""
    if text.lower() == "none":
        if not optional:
            raise ParamOverrideError(f"--param {name}=none: {name} is not an optional effect; "
                                     f"give a value like its committed {default!r}")
        return None  # an optional effect left off (v1's diffuser_sigma, grain_sigma, ...)
    try:
        if default is None:  # an optional effect, off by default: switched on with a range
            return tuple(float(p) for p in text.split(","))
        if isinstance(default, bool):
            word = text.lower()
            if word not in TRUE + FALSE:
                raise ValueError(f"expected true or false, got {text!r}")
            return word in TRUE
        if isinstance(default, int):
            if not text.lstrip("-").isdigit():
                raise ValueError(f"expected an integer like {default!r}")
            return int(text)
        if isinstance(default, float):
            return float(text)
        if isinstance(default, (tuple, list)):
            parts = [p.strip() for p in text.split(",") if p.strip()]
            if not parts:
                raise ValueError("expected comma-separated values")
            if default and all(isinstance(v, str) for v in default):
                return tuple(parts)
            if default and all(isinstance(v, int) for v in default):
                if not all(p.lstrip("-").isdigit() for p in parts):
                    raise ValueError(f"expected integers like {default!r}")
                return tuple(int(p) for p in parts)
            return tuple(float(p) for p in parts)
        if isinstance(default, str):
            return text
    except ValueError as err:
        raise ParamOverrideError(f"--param {name}={text}: {err}") from None
    raise ParamOverrideError(f"--param {name}: the field holds a {type(default).__name__}, "
                             "which cannot be set from the command line")


def with_overrides(params, overrides: Mapping[str, str]):
    """``params`` (a frozen simulator dataclass) with the fields in ``overrides`` replaced.

    Raises:
        ParamOverrideError: a key is not a field (the message lists the closest ones), is
            ``version`` (a version is a different simulator, not a variant), or its value
            does not parse or fails the parameters' checks.
    """
    # An optional effect's annotation reads "... | None" (the annotations are strings here).
    optional = {f.name for f in dataclasses.fields(params) if "None" in str(f.type)}
    fields = {f.name for f in dataclasses.fields(params)}
    values = {}
    for name, text in overrides.items():
        if name == "version":
            raise ParamOverrideError("--param version: choose the simulator with --simulator")
        if name not in fields:
            close = difflib.get_close_matches(name, sorted(fields), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ParamOverrideError(
                f"--param {name}: simulator v{params.version} has no such parameter{hint} "
                f"(its {len(fields)} are documented in {type(params).__module__}."
                f"{type(params).__name__})")
        values[name] = _parse(name, text, getattr(params, name), name in optional)
    try:
        return dataclasses.replace(params, **values)
    except (ValueError, TypeError) as err:
        raise ParamOverrideError(f"--param {', '.join(overrides)}: {err}") from None


def changed_fields(saved: Mapping, committed) -> dict:
    """The fields of a dataset's recorded simulator parameters (``saved``, the ``to_dict()``
    in its metadata) that differ from ``committed``'s: what makes it a variant."""
    current = committed.to_dict()
    return {name: value for name, value in saved.items()
            if name in current and _plain(value) != _plain(current[name])}


def _plain(value):
    return list(value) if isinstance(value, (tuple, list)) else value
