"""What may follow a gzip stream: one rule for uploads and local imports, and no input can hang.

Concatenated members are read in turn, trailing zero bytes are ignored, anything else after
the last member is refused with a message that names it.
"""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from app.api.upload import _Spool
from app.cli import main
from app.errors import PayloadTooLargeError, UnreadableManifestError
from app.ingest.gunzip import INFLATE_PIECE, GzipInflater, open_gunzipped
from tests.support import manifests
from tests.support.servers import live_server


def padded_json(manifest: dict[str, list[dict[str, Any]]]) -> bytes:
    """The manifest with 8000 spaces between entries: over 2 MiB that gzip to a few KB."""
    gap = ",\n" + " " * 8000
    parts = [
        f"{json.dumps(key)}: [{gap.join(map(json.dumps, entries))}]"
        for key, entries in manifest.items()
    ]
    return ("{" + ", ".join(parts) + "}").encode()


# A body this small arrives in one read, and then the end of the stream comes in a call whose
# output is capped at one inflate piece: the case on which the old upload reader spun for ever.
MANIFEST = manifests.generated(17, recordings=20)
RAW = padded_json(MANIFEST)
WINDOWS = sum(len(entries) for entries in MANIFEST.values())
GZ = gzip.compress(RAW, mtime=0)
FIRST, SECOND = gzip.compress(RAW[:1_000_000], mtime=0), gzip.compress(RAW[1_000_000:], mtime=0)

ACCEPTED = {
    "zero padding": GZ + b"\0" * 1000,
    "two members": FIRST + SECOND,
    "two members and padding": FIRST + SECOND + b"\0",
    "empty member after": GZ + gzip.compress(b"", mtime=0),
}
REFUSED = {
    "trailing newline": (
        GZ + b"\n",
        "1 byte of trailing data after the gzip stream: b'\\n'",
    ),
    "garbage after two members": (
        FIRST + SECOND + b"garbage!",
        "8 bytes of trailing data after the gzip stream: b'garbage!'",
    ),
    "zeros then garbage": (
        GZ + b"\0\0\0x",
        "4 bytes of trailing data after the gzip stream: b'\\x00\\x00\\x00x'",
    ),
    # As gzip(1): padding ends the input; a member after it is trailing data too.
    "zeros then a member": (
        GZ + b"\0" + GZ,
        f"{len(GZ) + 1} bytes of trailing data after the gzip stream: {bytes(1) + GZ[:15]!r}...",
    ),
    "a lone magic byte": (GZ + b"\x1f", "1 byte of trailing data after the gzip stream: b'\\x1f'"),
    "long garbage": (
        GZ + b"x" * 100_000,
        "100000 bytes of trailing data after the gzip stream: b'xxxxxxxxxxxxxxxx'...",
    ),
    "truncated second member": (FIRST + SECOND[:-6], "the gzip stream is truncated"),
    "cut inside the first": (GZ[: len(GZ) // 2], "the gzip stream is truncated"),
    "second member corrupt": (GZ + GZ[:10] + b"\xff" * 30, "is not valid gzip: Error -3"),
}


def inflate(data: bytes, chunk: int) -> bytes:
    inflater = GzipInflater("input")
    out = bytearray()
    for start in range(0, len(data), chunk):
        for piece in inflater.feed(data[start : start + chunk]):
            assert len(piece) <= INFLATE_PIECE
            out += piece
    inflater.finish()
    return bytes(out)


def test_the_manifest_spans_several_inflate_pieces() -> None:
    assert len(RAW) > 2 * INFLATE_PIECE
    assert len(GZ) < 8 * 1024
    assert len(RAW) - 1_000_000 > INFLATE_PIECE


@pytest.mark.parametrize("chunk", [1, 7, 4096, 10**9])
@pytest.mark.parametrize("name", ACCEPTED)
def test_inflater_reads_members_in_turn_and_ignores_zero_padding(name: str, chunk: int) -> None:
    assert inflate(ACCEPTED[name], chunk) == RAW


@pytest.mark.parametrize("chunk", [1, 7, 4096, 10**9])
@pytest.mark.parametrize("name", REFUSED)
def test_inflater_refuses_anything_else_by_name(name: str, chunk: int) -> None:
    data, message = REFUSED[name]
    with pytest.raises(UnreadableManifestError) as caught:
        inflate(data, chunk)
    assert caught.value.detail.startswith("input")
    assert message in caught.value.detail
    assert caught.value.status_code == 400


def test_inflater_counts_only_member_bytes_as_consumed() -> None:
    inflater = GzipInflater("input")
    for _ in inflater.feed(FIRST + SECOND + b"\0" * 50):
        pass
    inflater.finish()
    assert inflater.consumed == len(FIRST) + len(SECOND)


def test_gunzipped_file_reads_like_gzip_module(tmp_path: Path) -> None:
    path = tmp_path / "m.json.gz"
    path.write_bytes(FIRST + SECOND + b"\0" * 3)
    with open_gunzipped(path.open("rb"), "m") as stream:
        assert stream.read(10) == RAW[:10]
        assert stream.read() == RAW[10:]
        assert stream.read() == b""
    path.write_bytes(GZ + b"\n")
    with (
        open_gunzipped(path.open("rb"), "manifest file 'm'") as stream,
        pytest.raises(UnreadableManifestError, match="1 byte of trailing data"),
    ):
        stream.read()


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("SEIZURE_STATS_URL", raising=False)
    return CliRunner()


@pytest.mark.parametrize("name", [*ACCEPTED, *REFUSED])
def test_local_import_follows_the_same_rule(cli: CliRunner, tmp_path: Path, name: str) -> None:
    path = tmp_path / "m.json.gz"
    body, message = REFUSED[name] if name in REFUSED else (ACCEPTED[name], "")
    path.write_bytes(body)
    result = cli.invoke(main, ["import", str(path), "--dataset", "gz"], catch_exceptions=False)
    if message:
        assert result.exit_code == 1, result.output
        assert result.output.startswith(f"Error: manifest file {str(path)!r}")
        assert message in result.output
        assert result.output.count("\n") == 1
        datasets = cli.invoke(main, ["datasets", "--json"], catch_exceptions=False)
        assert json.loads(datasets.output) == []
    else:
        assert result.exit_code == 0, result.output
        assert f"windows {WINDOWS:,}" in result.output


def test_bad_and_truncated_local_gzip_name_the_file_and_the_problem(
    cli: CliRunner, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.json.gz"
    bad.write_bytes(b"\x1f\x8b" + b"this is not deflate data at all")
    result = cli.invoke(main, ["import", str(bad), "--dataset", "gz"])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.output == (
        f"Error: manifest file {str(bad)!r} is not valid gzip: Error -3 while decompressing data: "
        "unknown compression method\n"
    )
    cut = tmp_path / "cut.json.gz"
    cut.write_bytes(GZ[:-6])
    result = cli.invoke(main, ["import", str(cut), "--dataset", "gz"])
    assert result.exit_code == 1
    assert result.output == f"Error: manifest file {str(cut)!r}: the gzip stream is truncated\n"


@pytest.mark.e2e
def test_a_real_server_answers_every_case_and_stays_healthy(
    database_url: str, tmp_path: Path, write_token: str
) -> None:
    auth = {"Authorization": f"Bearer {write_token}", "Content-Encoding": "gzip"}
    with live_server(database_url, tmp_path) as server:
        try:
            for name, (body, message) in REFUSED.items():
                response = httpx.post(
                    f"{server.url}/api/v1/datasets/gz/snapshots",
                    content=body,
                    headers=auth,
                    timeout=20,
                )
                assert response.status_code == 400, (name, response.text)
                assert message in response.json()["detail"], name
                assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200, name
            for name, body in ACCEPTED.items():
                response = httpx.post(
                    f"{server.url}/api/v1/datasets/gz/snapshots",
                    content=body,
                    headers=auth,
                    timeout=20,
                )
                assert response.status_code in (200, 201), (name, response.text)
                assert response.json()["counts"]["total"] == WINDOWS
                assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200, name

            # The command line uploads a file as it is; the server's answer is the error.
            path = tmp_path / "m.json.gz"
            path.write_bytes(GZ + b"\n")
            runner = CliRunner()
            args = ["import", str(path), "--dataset", "cli", "--url", server.url]
            refused = runner.invoke(main, [*args, "--token", write_token])
            assert refused.exit_code == 1, refused.output
            assert refused.output == (
                "Error: 400 unreadable_manifest: body: 1 byte of trailing data after the "
                "gzip stream: b'\\n'\n"
            )
            assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
            path.write_bytes(FIRST + SECOND)
            accepted = runner.invoke(main, [*args, "--token", write_token])
            assert accepted.exit_code == 0, accepted.output
            assert f"windows {WINDOWS:,}" in accepted.output
        finally:
            # A server stuck in a loop ignores SIGTERM: kill it, so a failure cannot hang.
            server.kill()


def test_zlib_leaves_trailing_bytes_in_the_unconsumed_tail_for_ever() -> None:
    """Why the inflater never feeds an ended member again: this tail never empties."""
    member = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    member.decompress(GZ + b"\n", INFLATE_PIECE)
    tail = member.unconsumed_tail
    while not member.eof:
        member.decompress(tail, INFLATE_PIECE)
        tail = member.unconsumed_tail
    assert tail == b"\n"
    assert member.decompress(tail, INFLATE_PIECE) == b""
    assert member.unconsumed_tail == b"\n"


class _StuckMember:
    """An inflater that takes nothing and gives nothing: what zlib must never do."""

    eof = False
    unused_data = b""

    def __init__(self) -> None:
        self.unconsumed_tail = b""
        self.calls = 0

    def decompress(self, data: bytes, max_length: int) -> bytes:
        self.calls += 1
        assert self.calls < 100, "the inflating loop spins"  # fail rather than hang
        self.unconsumed_tail = data
        return b""


def test_the_loop_cannot_spin_even_if_inflating_stalls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("app.ingest.gunzip._new_member", _StuckMember)
    inflater = GzipInflater("input")
    with pytest.raises(UnreadableManifestError) as caught:
        list(inflater.feed(GZ))
    assert caught.value.detail == "input is not valid gzip: inflating stalled"


def test_zero_padding_counts_against_the_upload_limit() -> None:
    """Padding inflates to nothing and is read to the end: an endless body of zeros after a
    member must meet the limit all the same, on the bytes received."""
    spool = _Spool(max_bytes=100_000)
    spool.inflater = GzipInflater("body")
    spool.feed(gzip.compress(b'{"no_seizure": []}'))
    padding = bytes(4096)
    while spool.received + len(padding) <= 100_000:
        spool.feed(padding)
    with pytest.raises(PayloadTooLargeError, match="body exceeds the limit of 100000 bytes"):
        spool.feed(padding)
    spool.file.close()
