"""The sandbox's data format: plain data round-trips; anything else is refused before loading."""
import io
import json
import os
import zipfile

import numpy as np
import pytest

from autograder.sandbox import wire

BUDGET = 1 << 20


def test_round_trip_keeps_values_dtypes_and_nesting(tmp_path):
    message = {"f32": np.arange(6, dtype=np.float32).reshape(2, 3), "i8": np.array([-1, 2], np.int8),
               "flags": np.array([True, False]), "z": np.array([1 + 2j], np.complex64),
               "empty": np.zeros((0, 3)), "scalar": np.float64(2.5),
               "nested": {"list": [1, 2.5, "three", None, True, [np.arange(2)]], "tuple": (1, 2)}}
    wire.write(tmp_path, message)
    back = wire.read(tmp_path, max_bytes=BUDGET)
    for key in ("f32", "i8", "flags", "z", "empty"):
        assert type(back[key]) is np.ndarray
        assert back[key].dtype == message[key].dtype and back[key].shape == message[key].shape
        np.testing.assert_array_equal(back[key], message[key])
    assert back["scalar"].shape == () and back["scalar"].dtype == np.float64 and back["scalar"] == 2.5
    assert back["nested"]["list"][:5] == [1, 2.5, "three", None, True]
    np.testing.assert_array_equal(back["nested"]["list"][5][0], [0, 1])
    assert back["nested"]["tuple"] == [1, 2]


def test_absent_message_reads_as_none(tmp_path):
    assert wire.read(tmp_path, max_bytes=BUDGET) is None


@pytest.mark.parametrize("value", [np.array([object()]), np.array(["text"]), {1: "int key"},
                                   {"$nd": "reserved"}, object(), np.zeros(3).view(type("Sub", (np.ndarray,), {}))])
def test_write_refuses_what_is_not_plain_data(tmp_path, value):
    with pytest.raises(wire.WireError):
        wire.write(tmp_path, {"value": value})


def _npz_with_header(path, shape, dtype="<f8", payload=b""):
    header = np.lib.format.header_data_from_array_1_0(np.zeros(1))
    header.update(shape=shape, descr=dtype)
    member = io.BytesIO()
    np.lib.format.write_array_header_1_0(member, header)
    member.write(payload)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a0.npy", member.getvalue())


def test_a_huge_array_is_refused_from_its_header_before_loading(tmp_path):
    _npz_with_header(tmp_path / "out.npz", (10 ** 9,))
    (tmp_path / "out.json").write_text(json.dumps({"x": {"$nd": "a0"}}))
    with pytest.raises(wire.WireError, match="budget"):
        wire.read(tmp_path, max_bytes=BUDGET)


def test_pickled_arrays_are_refused(tmp_path):
    _npz_with_header(tmp_path / "out.npz", (1,), dtype="|O", payload=b"\x80\x04N.")
    (tmp_path / "out.json").write_text(json.dumps({"x": {"$nd": "a0"}}))
    with pytest.raises(wire.WireError, match="dtype"):
        wire.read(tmp_path, max_bytes=BUDGET)


def test_oversized_json_is_refused(tmp_path):
    (tmp_path / "out.json").write_text(json.dumps({"x": "y" * (BUDGET + 1)}))
    with pytest.raises(wire.WireError, match="larger"):
        wire.read(tmp_path, max_bytes=BUDGET)


@pytest.mark.parametrize("text", ['{"x": {"$nd": "a9"}}', '[1, 2]', '{"x": ', '[' * 100000])
def test_malformed_messages_are_refused(tmp_path, text):
    (tmp_path / "out.json").write_text(text)
    with pytest.raises(wire.WireError):
        wire.read(tmp_path, max_bytes=BUDGET)


def test_links_and_fifos_planted_by_the_student_are_refused(tmp_path):
    secret = tmp_path / "secret.json"
    secret.write_text('{"expected": 1}')
    call = tmp_path / "call"
    call.mkdir()
    (call / "out.json").symlink_to(secret)
    with pytest.raises(wire.WireError):
        wire.read(call, max_bytes=BUDGET)
    (call / "out.json").unlink()
    os.link(secret, call / "out.json")
    with pytest.raises(wire.WireError, match="hard link"):
        wire.read(call, max_bytes=BUDGET)
    (call / "out.json").unlink()
    os.mkfifo(call / "out.json")  # opening it must not block
    with pytest.raises(wire.WireError, match="regular"):
        wire.read(call, max_bytes=BUDGET)
