"""Shard format: round trip and clear errors naming the file."""

from __future__ import annotations

import numpy as np
import pytest

from pgolf_audit.reference_impl.shards import (
    SHARD_HEADER_BYTES,
    SHARD_MAGIC,
    ShardError,
    check_token_range,
    list_shards,
    load_tokens,
    read_shard,
    read_shard_header,
    write_shard,
)


def test_round_trip(tmp_path):
    tokens = np.array([1, 5, 65535, 0, 42], dtype=np.uint16)
    path = write_shard(tmp_path / "fineweb_val_000000.bin", tokens)
    assert path.stat().st_size == SHARD_HEADER_BYTES + 2 * tokens.size
    header = read_shard_header(path)
    assert (header.magic, header.version, header.num_tokens) == (SHARD_MAGIC, 1, 5)
    assert np.array_equal(read_shard(path), tokens)
    raw = np.fromfile(path, dtype="<i4", count=256)
    assert raw[0] == 20240520 and raw[1] == 1 and raw[2] == 5 and not raw[3:].any()


def test_empty_shard(tmp_path):
    path = write_shard(tmp_path / "empty.bin", [])
    assert read_shard(path).size == 0


def test_load_tokens_concatenates_in_name_order(tmp_path):
    write_shard(tmp_path / "fineweb_val_000001.bin", [3, 4])
    write_shard(tmp_path / "fineweb_val_000000.bin", [1, 2])
    assert load_tokens(tmp_path / "fineweb_val_*.bin").tolist() == [1, 2, 3, 4]


def _expect(path, *fragments):
    with pytest.raises(ShardError) as info:
        read_shard(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_wrong_magic(tmp_path):
    path = write_shard(tmp_path / "a.bin", [1, 2, 3])
    data = bytearray(path.read_bytes())
    data[0:4] = (12345).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    _expect(path, "wrong magic 12345", "20240520")


def test_wrong_version(tmp_path):
    path = write_shard(tmp_path / "a.bin", [1, 2, 3])
    data = bytearray(path.read_bytes())
    data[4:8] = (7).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    _expect(path, "version 7")


def test_truncated_tokens(tmp_path):
    path = write_shard(tmp_path / "a.bin", list(range(100)))
    path.write_bytes(path.read_bytes()[:-10])
    _expect(path, "truncated", "100 tokens", "95 tokens")


def test_truncated_header(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"\x00" * 100)
    _expect(path, "truncated header", "100 bytes")


def test_trailing_bytes(tmp_path):
    path = write_shard(tmp_path / "a.bin", [1, 2])
    path.write_bytes(path.read_bytes() + b"\x01\x02\x03")
    _expect(path, "size mismatch", "3 trailing bytes")


def test_corrupt_text_file(tmp_path):
    path = tmp_path / "notes.bin"
    path.write_text("this is not a shard " * 100)
    _expect(path, "wrong magic", "not a token shard")


def test_missing_file_and_empty_glob(tmp_path):
    _expect(tmp_path / "missing.bin", "not found")
    with pytest.raises(ShardError, match="no shard files match"):
        list_shards(tmp_path / "fineweb_val_*.bin")


def test_vocab_mismatch_names_file_and_tokenizer(tmp_path):
    path = write_shard(tmp_path / "fineweb_val_000000.bin", [1, 2, 900, 3])
    with pytest.raises(ShardError) as info:
        load_tokens(tmp_path / "fineweb_val_*.bin", vocab_size=512, tokenizer_name="tok.model")
    message = str(info.value)
    assert str(path) in message and "900" in message and "512" in message and "tok.model" in message
    check_token_range(np.array([1, 2], dtype=np.uint16), 512, path)


def test_write_rejects_out_of_range(tmp_path):
    with pytest.raises(ShardError, match="0..65535"):
        write_shard(tmp_path / "a.bin", [70000])
