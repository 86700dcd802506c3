"""Long names, numbers and gaps in a manifest: refused by entry, after a bounded amount of work.

The parser's cost on one token used to grow with the square of its length; now the reader stops
at MAX_TOKEN_BYTES, so the bytes read (and hence the parser's work) do not depend on the length
sent. Work is counted in bytes read, not timed.
"""

from __future__ import annotations

import io
import json

import pytest
from fastapi.testclient import TestClient

from app.errors import ManifestError
from app.ingest.manifest import parse_manifest
from app.ingest.names import MAX_FILE_NAME
from app.ingest.token_limit import MAX_TOKEN_BYTES, TokenLimitReader, TokenTooLongError

HEAD = (
    '{"partial_seizure": [], "full_seizure": [], "no_seizure": ['
    + ", ".join(json.dumps({"cache_file": f"r{i}.npz", "window_idx": 0}) for i in range(3))
    + ", "
).encode()
NAME_LIMIT = f"no_seizure[3].cache_file: is longer than {MAX_FILE_NAME} characters"
GAP_LIMIT = f"more than {MAX_TOKEN_BYTES} bytes without a string quote"


def long_name(content: bytes) -> bytes:
    return HEAD + b'{"cache_file": "' + content + b'", "window_idx": 0}]}'


def refusal(data: bytes) -> tuple[str, int]:
    """The parser's message, and how many bytes it read before giving up."""
    read: list[int] = []
    with pytest.raises(ManifestError) as caught:
        parse_manifest(io.BytesIO(data), progress=read.append)
    return caught.value.detail, sum(read)


@pytest.mark.parametrize("megabytes", [1, 2, 8, 32])
def test_a_long_name_is_refused_by_entry_after_reading_a_bounded_prefix(megabytes: int) -> None:
    detail, read = refusal(long_name(b"a" * megabytes * 2**20))
    assert detail == NAME_LIMIT
    # The same bound whatever the length: the cap plus at most one read before it.
    assert read <= len(HEAD) + 2 * MAX_TOKEN_BYTES


@pytest.mark.parametrize(
    "content",
    [b'\\"' * 2**19, b"\\\\" * 2**19, b"\\u00e9" * 2**18, "é".encode() * 2**19],
    ids=["escaped quotes", "escaped backslashes", "unicode escapes", "utf-8"],
)
def test_escapes_do_not_hide_a_long_name(content: bytes) -> None:
    detail, read = refusal(long_name(content))
    assert detail == NAME_LIMIT
    assert read <= len(HEAD) + 2 * MAX_TOKEN_BYTES


def test_a_name_under_the_token_cap_is_refused_without_being_echoed() -> None:
    detail, _ = refusal(long_name(b"b" * 60_000))
    assert detail == (
        f"no_seizure[3].cache_file 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb...': "
        f"is longer than {MAX_FILE_NAME} characters"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            HEAD + b'{"cache_file": "x.npz", "window_idx": ' + b"7" * 2**22 + b"}]}",
            f"no_seizure[3].window_idx: a value of more than {MAX_TOKEN_BYTES} bytes",
        ),
        (HEAD + b'{"' + b"k" * 2**22 + b'": 1}]}', f"no_seizure[3]: {GAP_LIMIT}"),
        (HEAD + b" " * 2**22 + b"]}", f"no_seizure: {GAP_LIMIT}"),
        (b'{"' + b"c" * 2**22 + b'": []}', f"the manifest object: {GAP_LIMIT}"),
    ],
    ids=["number", "key", "gap", "category key"],
)
def test_other_long_runs_are_refused_where_they_stand(data: bytes, message: str) -> None:
    detail, read = refusal(data)
    assert detail == message
    assert read <= len(HEAD) + 2 * MAX_TOKEN_BYTES


@pytest.mark.parametrize("shift", [0, 1, 7, 5000, MAX_TOKEN_BYTES - 40])
def test_the_cap_is_exact_wherever_the_reads_fall(shift: int) -> None:
    """A run of MAX_TOKEN_BYTES bytes between two quotes passes; one byte more is refused."""

    def manifest(run: int) -> bytes:
        # The run is the comma and the spaces between "x.npz" and "window_idx".
        entry = b'{"cache_file": "x.npz",' + b" " * (run - 1) + b'"window_idx": 0}'
        return HEAD[:-2] + b"," + b" " * shift + entry + b"]}"

    parsed = parse_manifest(io.BytesIO(manifest(MAX_TOKEN_BYTES)))
    assert parsed.recordings == ["r0.npz", "r1.npz", "r2.npz", "x.npz"]
    assert refusal(manifest(MAX_TOKEN_BYTES + 1))[0] == f"no_seizure[3]: {GAP_LIMIT}"


def test_escaped_quotes_and_unicode_across_reads_parse_exactly() -> None:
    names = [f'r"{i}"{"é" * (i % 100)}{"q" * (i % 140)}.npz' for i in range(3000)]
    entries = [{"cache_file": name, "window_idx": i} for i, name in enumerate(names)]
    raw = json.dumps({"partial_seizure": [], "full_seizure": [], "no_seizure": entries}).encode()
    assert len(raw) > 8 * MAX_TOKEN_BYTES
    assert raw.count(b'\\"') == 2 * len(names)
    assert parse_manifest(io.BytesIO(raw)).recordings == sorted(names)


def test_the_reader_passes_everything_before_the_run_then_refuses() -> None:
    data = b'["ab", "' + b"z" * (MAX_TOKEN_BYTES + 10)
    reader = TokenLimitReader(io.BytesIO(data))
    assert reader.read(0) == b""
    passed = reader.read(10**6) + reader.read(10**6)
    assert passed == data[: 8 + MAX_TOKEN_BYTES]  # up to the last quote, then the cap
    with pytest.raises(TokenTooLongError):
        reader.read(10**6)


def test_a_long_name_in_an_upload_gets_a_422_naming_the_entry(client: TestClient) -> None:
    response = client.post("/api/v1/datasets/long/snapshots", content=long_name(b"n" * 2**23))
    assert response.status_code == 422, response.text[:300]
    assert response.json() == {"error": "invalid_manifest", "detail": NAME_LIMIT}
    assert client.get("/api/v1/datasets/long").status_code == 404
