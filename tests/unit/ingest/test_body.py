import gzip

import pytest

from services.ingest.domain.body import BodyError, decode_body, parse_json_object

LIMIT = 1024


def test_plain_body_within_the_limit_passes_through() -> None:
    assert decode_body(b'{"a":1}', None, LIMIT) == b'{"a":1}'


def test_plain_body_over_the_limit_is_413_naming_it() -> None:
    with pytest.raises(BodyError) as refused:
        decode_body(b"x" * (LIMIT + 1), "identity", LIMIT)
    assert refused.value.status == 413
    assert "limit of 1024 bytes (1 KB)" in refused.value.message


def test_gzip_is_decoded() -> None:
    assert decode_body(gzip.compress(b'{"a":1}'), "gzip", LIMIT) == b'{"a":1}'


def test_a_gzip_bomb_is_refused_by_its_decompressed_size() -> None:
    bomb = gzip.compress(b"0" * 10_000_000)
    assert len(bomb) < LIMIT * 20
    with pytest.raises(BodyError) as refused:
        decode_body(bomb, "gzip", LIMIT)
    assert refused.value.status == 413


def test_broken_and_truncated_gzip_are_400() -> None:
    with pytest.raises(BodyError, match="not valid gzip"):
        decode_body(b"not gzip", "gzip", LIMIT)
    with pytest.raises(BodyError, match="truncated"):
        decode_body(gzip.compress(b'{"a": 1}')[:-6], "gzip", LIMIT)


def test_unknown_encodings_are_415() -> None:
    with pytest.raises(BodyError) as refused:
        decode_body(b"{}", "br", LIMIT)
    assert refused.value.status == 415


@pytest.mark.parametrize(("body", "message"), [(b"{", "not valid JSON"), (b"[]", "JSON object")])
def test_body_must_be_a_json_object(body: bytes, message: str) -> None:
    with pytest.raises(BodyError, match=message):
        parse_json_object(body)
