"""SimulatorParams: one frozen, versioned parameter set with a stable fingerprint (no TF)."""

import dataclasses
import json
import os
import pickle
import subprocess
import sys

import pytest

from tfrecap.data.simulator import DEFAULT_PARAMS, SimulatorParams

# The committed simulator's fingerprint. It changes only with a field or a default, which
# changes the identity of every synthetic dataset: such a commit must say so.
DEFAULT_FINGERPRINT = "c28cb4412c1c12a3"


def test_default_fingerprint_is_pinned_and_stable_across_processes():
    assert DEFAULT_PARAMS.fingerprint() == DEFAULT_FINGERPRINT
    code = ("from tfrecap.data.simulator import DEFAULT_PARAMS; "
            "print(DEFAULT_PARAMS.fingerprint())")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, env={**os.environ, "PYTHONHASHSEED": "123"})
    assert out.stdout.strip() == DEFAULT_FINGERPRINT


def _changed(field):
    value = getattr(DEFAULT_PARAMS, field.name)
    if field.name == "jpeg_subsampling":
        return "4:4:4"
    if value is None:
        return (1.0, 2.0)
    if isinstance(value, tuple):
        return (value[0], value[1] + 1)
    return value + 1 if isinstance(value, int) else value * 1.5


@pytest.mark.parametrize("field", dataclasses.fields(SimulatorParams), ids=lambda f: f.name)
def test_every_field_changes_the_fingerprint(field):
    params = dataclasses.replace(DEFAULT_PARAMS, **{field.name: _changed(field)})
    assert params != DEFAULT_PARAMS
    assert params.fingerprint() != DEFAULT_FINGERPRINT


def test_equal_values_are_equal_params():
    # Ints for floats and lists from JSON are the same parameters, with the same hash.
    same = SimulatorParams(full_well=(3000, 30000), keystone=0.02)
    assert same == DEFAULT_PARAMS and same.fingerprint() == DEFAULT_FINGERPRINT
    back = SimulatorParams(**json.loads(json.dumps(DEFAULT_PARAMS.to_dict())))
    assert back == DEFAULT_PARAMS and hash(back) == hash(DEFAULT_PARAMS)


def test_params_are_frozen_and_picklable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_PARAMS.version = 2
    assert pickle.loads(pickle.dumps(DEFAULT_PARAMS)) == DEFAULT_PARAMS  # for spawn workers


@pytest.mark.parametrize(("changes", "message"), [
    ({"full_well": (30000.0, 3000.0)}, "full_well must be a range"),
    ({"lens_sigma": (0.0, 0.5)}, "lens_sigma must be positive"),
    ({"jpeg_quality": (75, 101)}, "jpeg_quality must lie in 1..100"),
    ({"jpeg_quality": (75.5, 90)}, "jpeg_quality must be an integer"),
    ({"jpeg_subsampling": "4:1:1"}, "jpeg_subsampling must be one of 4:4:4, 4:2:2, 4:2:0"),
    ({"keystone": 0.6}, "keystone must lie in"),
    ({"pad": 0}, "pad, supersample"),
])
def test_bad_values_are_rejected_with_the_field_name(changes, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(DEFAULT_PARAMS, **changes)


def test_naming_the_params_does_not_load_the_physics():
    code = ("import sys; from tfrecap.data import builder; "
            "from tfrecap.data.simulator import DEFAULT_PARAMS; DEFAULT_PARAMS.fingerprint(); "
            "assert 'scipy.ndimage' not in sys.modules, 'scipy was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
