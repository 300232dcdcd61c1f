"""Integrity of the log (issue 9, reproducer 5): every flipped byte of a tail or a segment is a
CorruptLogError naming the file, in the store and in analysis alike; never accepted data."""

from __future__ import annotations

import base64
import errno
import json
import os
import zlib
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import analysis
from hpostore import open_store
from hpostore.errors import CorruptLogError, HPOStoreError
from hpostore.log.events import (
    ARROW_LINE_ROWS,
    COLUMNS,
    DUCKDB_DDL,
    Row,
    decode_line,
    decode_rows,
    encode_batch,
    encode_commit,
    encode_line,
    rows_to_table,
    table_rows,
)
from hpostore.log.segments import (
    cover,
    list_segments,
    read_folder,
    read_segment,
    study_folder_name,
    write_segment,
)
from hpostore.log.tail import Tail, parse_tail, read_tail
from hpostore.store import _tail_writer
from hpostore.store._folding import commits_table
from hpostore.store._tail_writer import TailWriter
from hpostore.store.parquet import ParquetStore

MASKS = (0x01, 0x20, 0x80)


def _rows(study: str, n: int, first: int = 1) -> list[Row]:
    kinds = ["study", "session", "suggest", "start", "evaluate", "update", "end"]
    return [
        (
            study,
            seq,
            1_700_000_000_000_000 + seq,
            float(seq),
            "s1",
            kinds[(seq - 1) % 7],
            seq // 3,
            '{"lr":0.1,"act":"relu"}',
            1.0,
            0.25 * seq,
            0.5,
            "w0",
            '{"reason":"x"}',
        )  # fmt: skip
        for seq in range(first, first + n)
    ]


def _flipped(data: bytes, i: int, mask: int) -> bytes:
    return data[:i] + bytes([data[i] ^ mask]) + data[i + 1 :]


# --- tail ---------------------------------------------------------------------------------------
def test_every_flipped_byte_of_a_tail_is_an_error_naming_the_file_and_offset(
    tmp_path: Path,
) -> None:
    rows = _rows("study-a", 6)
    data = b"".join(encode_line(r) for r in rows)
    assert read_tail_bytes(tmp_path, data).rows == rows
    accepted = []
    path = tmp_path / "runs.duckdb.tail"
    for i in range(len(data)):
        for mask in MASKS:
            path.write_bytes(_flipped(data, i, mask))
            try:
                got = read_tail(path)
            except CorruptLogError as exc:
                assert str(path) in str(exc) and "at byte" in str(exc), exc
                continue
            accepted.append((i, mask, got.rows))
    assert accepted == []  # before: 6/60 flips were accepted as changed data


def read_tail_bytes(tmp_path: Path, data: bytes) -> Tail:
    path = tmp_path / "t.tail"
    path.write_bytes(data)
    return read_tail(path)


def test_a_torn_last_line_is_dropped_but_a_lost_newline_is_corruption(tmp_path: Path) -> None:
    rows = _rows("s", 3)
    lines = [encode_line(r) for r in rows]
    whole = b"".join(lines)
    for cut in range(1, len(lines[-1])):  # a crash part-way through the last write
        tail = parse_tail(whole[: len(whole) - cut], "x.tail")
        assert tail.rows == rows[:2] and tail.end == len(lines[0]) + len(lines[1])
    with pytest.raises(CorruptLogError, match="newline"):
        parse_tail(whole[:-1] + b"X", "x.tail")
    with pytest.raises(CorruptLogError, match="at byte 0"):
        parse_tail(lines[0].upper(), "x.tail")  # the same checksum in capitals: not as written


def test_space_reserved_ahead_of_the_writer_is_not_data(tmp_path: Path) -> None:
    path = tmp_path / "runs.duckdb.tail"
    rows = _rows("s", 9)
    writer = TailWriter(str(path))
    for i in range(0, 9, 3):
        writer.append(rows[i : i + 3])
    assert path.stat().st_size > writer.size  # NUL bytes reserved after the lines
    tail = read_tail(path)
    assert tail.rows == rows and tail.end == writer.size
    written = path.read_bytes()[: writer.size]
    writer.close()
    assert path.read_bytes() == written  # the reserve is given back at close
    reserved = written + bytes(2048)
    changed = []
    for i in range(len(reserved)):  # a flip in the written lines is corruption, as without it
        for mask in MASKS:
            try:
                got = parse_tail(_flipped(reserved, i, mask), "x.tail")
            except CorruptLogError:
                if i >= len(written):
                    changed.append((i, mask, "raised"))
                continue
            if i < len(written) or got.rows != rows:  # in the reserve: never data, never lost
                changed.append((i, mask, got.rows))
    assert changed == []


def test_trimming_a_large_tail_keeps_the_unfolded_lines_byte_for_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fold that leaves commits behind (they came while it ran) rewrites a large tail with
    those commits' lines as they were written, JSON and Arrow alike, and appends go on after
    them; a fold of everything empties it."""
    monkeypatch.setattr(_tail_writer, "TAIL_REWRITE_BYTES", 100)
    path = tmp_path / "runs.duckdb.tail"
    rows = _rows("s", 3 + ARROW_LINE_ROWS + 6)
    commits = [rows[:3], rows[3 : 3 + ARROW_LINE_ROWS], rows[-6:-3], rows[-3:]]
    writer = TailWriter(str(path))
    lines = []
    for commit in commits[:3]:
        start = writer.size
        writer.append(commit)
        lines.append(path.read_bytes()[start : writer.size])
    assert lines[1][9:10] == b"@"  # the large commit is an Arrow line
    writer.trim(1)  # the first commit was folded; the other two were not
    assert path.read_bytes() == lines[1] + lines[2]
    assert read_tail(path).rows == rows[3:-3]
    start = writer.size
    writer.append(commits[3])
    last = path.read_bytes()[start : writer.size]
    writer.trim(2)
    assert path.read_bytes() == last and read_tail(path).rows == commits[3]
    writer.trim(1)  # nothing left unfolded: emptied
    assert path.stat().st_size == 0 and writer.size == 0
    writer.append(commits[0])
    writer.close()
    assert read_tail(path).rows == commits[0]
    assert not (tmp_path / "runs.duckdb.tail.new").exists()


def test_a_rewrite_that_fails_leaves_the_tail_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A full disk while the tail is rewritten: the partial copy is removed, the tail keeps
    every line (the folded ones are skipped by seq), and appends and trims go on."""
    monkeypatch.setattr(_tail_writer, "TAIL_REWRITE_BYTES", 100)
    path = tmp_path / "runs.duckdb.tail"
    rows = _rows("s", 12)
    writer = TailWriter(str(path))
    for i in range(0, 9, 3):
        writer.append(rows[i : i + 3])
    copy = TailWriter._copy

    def full_disk(self: TailWriter, start: int, target: str) -> None:
        Path(target).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(TailWriter, "_copy", full_disk)
    before = path.read_bytes()
    writer.trim(1)
    assert "could not trim the tail" in caplog.text
    assert path.read_bytes() == before and not Path(str(path) + ".new").exists()
    monkeypatch.setattr(TailWriter, "_copy", copy)
    writer.append(rows[9:])
    writer.trim(1)  # the second commit: the rewrite keeps the third and fourth
    assert read_tail(path).rows == rows[6:]
    writer.close()


def test_a_fold_that_commits_arrive_during_leaves_a_complete_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events committed while a fold runs stay in the (rewritten) tail, and the store reopens
    with every event once, in order."""
    monkeypatch.setattr(_tail_writer, "TAIL_REWRITE_BYTES", 100)
    path = tmp_path / "runs.duckdb"
    store = open_store(str(path), durability="batched")
    appended = 0

    def append(n: int) -> None:
        nonlocal appended
        for _ in range(n):
            store.append("s", "session", elapsed=float(appended), session="x", payload="{}")
            appended += 1
        store.commit(force=True)

    fold = store._table.fold

    def fold_while_committing(*args: object, **kwargs: object) -> bool:
        append(5)  # another commit lands while the fold inserts the earlier ones
        return fold(*args, **kwargs)  # type: ignore[arg-type]

    append(ARROW_LINE_ROWS + 10)
    monkeypatch.setattr(store._table, "fold", fold_while_committing)
    assert store._fold(5.0)
    assert len(store._unfolded) == 5
    assert [r[1] for r in read_tail(str(path) + ".tail").rows] == list(
        range(ARROW_LINE_ROWS + 11, appended + 1)
    )
    append(3)
    monkeypatch.undo()
    store.close()
    reopened = open_store(str(path), durability="batched")
    seqs = [r[1] for r in table_rows(reopened.sql("SELECT * FROM events ORDER BY seq"))]
    reopened.close()
    assert seqs == list(range(1, appended + 1))


def test_a_crash_in_reserved_space_leaves_a_hole_whose_write_is_dropped() -> None:
    rows = _rows("s", 16)
    acknowledged = b"".join(encode_line(r) for r in rows[:3])
    torn = b"".join(encode_line(r) for r in rows[3:])
    assert len(torn) > 1024
    # the first sector of the last write never reached the disk, a later one did
    data = acknowledged + bytes(512) + torn[512:] + bytes(4096)
    tail = parse_tail(data, "x.tail")
    assert tail.rows == rows[:3] and tail.end == len(acknowledged)
    with pytest.raises(CorruptLogError, match="at byte"):  # fewer NULs than a sector: a flip
        parse_tail(acknowledged[:40] + bytes(3) + acknowledged[43:], "x.tail")


def test_a_commit_is_one_line_and_every_flip_in_it_is_corruption(tmp_path: Path) -> None:
    rows = _rows("s", 5)
    line = encode_batch(rows)
    assert line.count(b"\n") == 1 and decode_rows(line) == rows
    assert parse_tail(encode_line(rows[0]) + encode_batch(rows[1:]), "x").rows == rows
    for i in range(len(line)):
        for mask in MASKS:
            with pytest.raises(CorruptLogError, match="at byte 0"):
                parse_tail(_flipped(line, i, mask) + encode_batch(_rows("s", 1, first=6)), "x")
    v1 = (json.dumps([list(r) for r in rows], separators=(",", ":")) + "\n").encode()
    with pytest.raises(CorruptLogError):  # hpostore 0.1 wrote no batches
        parse_tail(v1, "old.tail")


def _awkward_rows(n: int) -> list[Row]:
    """Rows with every kind of value a column holds: nulls, NaN, infinities, non-ASCII, NUL."""
    rows = _rows("s ü", n)
    odd = [None, float("nan"), float("inf"), -0.0]
    return [
        r[:6]
        + (None if i % 5 == 0 else r[6], r[7] if i % 3 else None, odd[i % 4])
        + (r[9] if i % 7 else None, r[10], "wörker\x00" if i % 2 else None, r[12])
        for i, r in enumerate(rows)
    ]


def _same(a: list[Row], b: list[Row]) -> bool:
    """Equal rows, a NaN equal to a NaN."""
    return json.dumps(a) == json.dumps(b)


def test_a_large_commit_is_one_arrow_line_read_back_exactly() -> None:
    rows = _awkward_rows(ARROW_LINE_ROWS + 7)
    line, table = encode_commit(rows)
    assert line.count(b"\n") == 1 and line[9:10] == b"@" and b"\0" not in line
    assert table is not None and _same(table_rows(table), rows)
    assert _same(decode_rows(line), rows)
    small, none = encode_commit(rows[:5])  # a durable commit's few rows stay a JSON line
    assert none is None and small == encode_batch(rows[:5])
    more = _rows("s ü", 3, first=len(rows) + 1)
    tail = parse_tail(small + encode_commit(rows[5:])[0] + encode_line(more[0]), "x")
    assert _same(tail.rows, rows + more[:1])


def test_every_flip_in_an_arrow_line_is_corruption() -> None:
    line = encode_commit(_rows("s", ARROW_LINE_ROWS))[0]
    after = encode_batch(_rows("s", 1, first=ARROW_LINE_ROWS + 1))
    # every byte of the checksum and the start of the body, then a dense sample of the rest
    # (each flip costs a copy of a ~60 KB line)
    positions = [*range(64), *range(64, len(line), 37), len(line) - 2, len(line) - 1]
    for i in positions:
        for mask in MASKS:
            with pytest.raises(CorruptLogError, match="at byte 0"):
                parse_tail(_flipped(line, i, mask) + after, "x")


#: the base64 text of a valid Arrow line's body
_ARROW_BODY = encode_commit(_rows("s", ARROW_LINE_ROWS))[0][10:-1]


@pytest.mark.parametrize(
    "body",
    [
        b"@not base64!",
        b"@" + base64.b64encode(b"\xff" * 40),
        b"@" + base64.b64encode(base64.b64decode(_ARROW_BODY)[: len(_ARROW_BODY) // 3]),
        "wrong columns",
        "a null seq",
    ],
    ids=["base64", "not-arrow", "truncated", "columns", "null-seq"],
)
def test_a_checksum_valid_but_made_up_arrow_line_is_corruption(body: bytes | str) -> None:
    if isinstance(body, str):
        table = rows_to_table(_rows("s", 3))
        if body == "wrong columns":
            table = table.drop_columns(["payload"])
        else:
            seq = pa.array([1, None, 3], pa.int64())
            table = table.set_column(1, pa.field("seq", pa.int64()), seq)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        body = b"@" + base64.b64encode(sink.getvalue().to_pybytes())
    line = b"%08x " % zlib.crc32(body) + body + b"\n"
    with pytest.raises(CorruptLogError, match="at byte 0"):
        parse_tail(line, "x")


def test_the_fold_inserts_each_commits_own_table_and_converts_the_rest_at_once() -> None:
    rows = _awkward_rows(3 * ARROW_LINE_ROWS)
    cuts = [0, 2, 4, 4 + ARROW_LINE_ROWS, 4 + ARROW_LINE_ROWS + 1, 2 * ARROW_LINE_ROWS + 9,
            len(rows)]  # fmt: skip
    commits = []
    for a, b in zip(cuts, cuts[1:]):
        commits.append((b - a, encode_commit(rows[a:b])[1]))
    assert [t is not None for _, t in commits] == [False, False, True, False, True, False]
    assert _same(table_rows(commits_table(rows, commits)), rows)
    with pytest.raises(AssertionError):
        commits_table(rows[1:], commits)


def test_a_v1_tail_without_checksums_is_still_read_but_never_mixed(tmp_path: Path) -> None:
    rows = _rows("old", 3)
    v1 = b"".join((json.dumps(r, separators=(",", ":")) + "\n").encode() for r in rows)
    assert parse_tail(v1, "old.tail").rows == rows and parse_tail(v1, "x").version == 1
    mixed = v1 + encode_line(_rows("old", 1, first=4)[0])
    with pytest.raises(CorruptLogError, match="without a checksum among checksummed"):
        parse_tail(encode_line(rows[0]) + v1[v1.index(b"\n") + 1 :], "mixed.tail")
    with pytest.raises(CorruptLogError):
        parse_tail(mixed, "mixed.tail")
    assert decode_line(encode_line(rows[0])) == rows[0]


def _duckdb_with_tail(tmp_path: Path) -> tuple[Path, bytes]:
    path = tmp_path / "runs.duckdb"
    con = duckdb.connect(os.fspath(path))
    con.execute(DUCKDB_DDL)
    con.register("batch", rows_to_table(_rows("s", 4)))
    con.execute("INSERT INTO events SELECT * FROM batch")
    con.close()
    data = b"".join(encode_line(r) for r in _rows("s", 3, first=5))
    Path(f"{path}.tail").write_bytes(data)
    return path, data


def test_analysis_reads_a_tail_under_the_same_rules(tmp_path: Path) -> None:
    path, data = _duckdb_with_tail(tmp_path)
    con = analysis.views(path)
    assert con.execute("SELECT max(seq), count(*) FROM events").fetchall() == [(7, 7)]
    con.close()
    tail = Path(f"{path}.tail")
    accepted = []
    for i in range(0, len(data), 5):  # a dense sample: each attach costs milliseconds
        tail.write_bytes(_flipped(data, i, 0x01))
        try:
            analysis.views(path).close()
        except CorruptLogError as exc:
            assert str(tail) in str(exc)
            continue
        accepted.append(i)
    assert accepted == []
    tail.write_bytes(encode_line(_rows("s", 1, first=6)[0]))  # seq 5 missing: a gap
    with pytest.raises(CorruptLogError, match="jumps from seq 4 to 6"):
        analysis.views(path)


# --- segments -----------------------------------------------------------------------------------
def _one_segment(tmp_path: Path, n: int = 40) -> tuple[Path, Path]:
    root = tmp_path / "runs"
    with ParquetStore(os.fspath(root)) as store:
        for _ in range(n):
            store.append("s", "suggest", elapsed=1.0, session="x", trial=1, config='{"a":1}')
            store.commit()
    folder = root / study_folder_name("s")
    [seg] = list_segments(folder)  # merged at close
    return root, seg.path


def test_every_flipped_byte_of_a_segment_is_an_error_naming_it(tmp_path: Path) -> None:
    root, path = _one_segment(tmp_path)
    data = path.read_bytes()
    [seg] = list_segments(path.parent)
    assert seg.digest is not None and read_segment(seg, "s").num_rows == 40
    accepted = []
    for i in range(len(data)):
        path.write_bytes(_flipped(data, i, 0x01))
        try:
            read_segment(seg, "s")
        except CorruptLogError as exc:
            assert path.name in str(exc)
            continue
        accepted.append(i)
    assert accepted == []  # before: 152 of 4,210 flips were accepted (a phantom study)
    for i in range(0, len(data), max(1, len(data) // 25)):  # the store and analysis alike
        path.write_bytes(_flipped(data, i, 0x80))
        with open_store(os.fspath(root), read_only=True) as store:
            with pytest.raises(CorruptLogError, match=path.name):
                store.events("s")
            with pytest.raises(CorruptLogError, match=path.name):
                store.sql("SELECT count(*) FROM events")
        with pytest.raises(CorruptLogError, match=path.name):
            analysis.views(root)


def test_a_segment_without_a_hash_from_hpostore_0_1_is_read_and_checked(tmp_path: Path) -> None:
    folder = tmp_path / "runs" / "s"
    folder.mkdir(parents=True)
    pq.write_table(rows_to_table(_rows("s", 7)), folder / "000000000001-000000000007.w.parquet")
    with open_store(os.fspath(tmp_path / "runs") + "/", read_only=True) as store:
        assert store.events("s").column("seq").to_pylist() == list(range(1, 8))
    assert analysis.views(tmp_path / "runs").execute("SELECT count(*) FROM events").fetchall() == [
        (7,)
    ]
    # a legacy file cannot smuggle another study's events (the phantom study of reproducer 5)
    pq.write_table(
        rows_to_table(_rows("ghost", 2, first=8)), folder / f"{8:012d}-{9:012d}.w.parquet"
    )
    with pytest.raises(CorruptLogError, match="another study"):
        read_folder(folder, "s")
    (folder / f"{8:012d}-{9:012d}.w.parquet").unlink()
    # ... nor follow a hashed segment: this version writes hashed ones only
    write_segment(folder, rows_to_table(_rows("s", 2, first=8)), 8, 9, "new", durable=False)
    pq.write_table(
        rows_to_table(_rows("s", 1, first=10)), folder / f"{10:012d}-{10:012d}.w.parquet"
    )
    with pytest.raises(CorruptLogError, match="no content hash"):
        read_folder(folder, "s")


def test_equal_ranges_from_two_writers_are_an_error_everywhere(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    folder = root / "s"
    folder.mkdir(parents=True)
    write_segment(folder, rows_to_table(_rows("s", 3)), 1, 3, "w1", durable=False)
    other = [r[:4] + ("other-session",) + r[5:] for r in _rows("s", 3)]
    write_segment(folder, rows_to_table(other), 1, 3, "w2", durable=False)
    store = ParquetStore(os.fspath(root))
    for read in (
        lambda: store.events("s"),
        lambda: store.sql("SELECT * FROM events"),
        lambda: analysis.views(root),
        lambda: store.compact(),
    ):
        with pytest.raises(CorruptLogError, match="two writers"):
            read()
    assert len(list_segments(folder)) == 2  # compact deleted neither
    store.close()
    # the same events under two names (two compactions of the same segments) are one
    (folder / [s.path.name for s in list_segments(folder) if s.writer == "w2"][0]).unlink()
    write_segment(folder, rows_to_table(_rows("s", 3)), 1, 3, "compact-w3", durable=False)
    again = ParquetStore(os.fspath(root))
    with again:
        assert again.events("s").num_rows == 3
        assert again.compact() == {"s": (2, 1)}


def test_a_narrow_segment_inside_a_wider_one_must_hold_the_same_events(tmp_path: Path) -> None:
    folder = tmp_path / "runs" / "s"
    folder.mkdir(parents=True)
    write_segment(folder, rows_to_table(_rows("s", 6)), 1, 6, "compact-a", durable=False)
    write_segment(folder, rows_to_table(_rows("s", 2, first=3)), 3, 4, "a", durable=False)
    assert read_folder(folder, "s").num_rows == 6  # a compaction in progress: fine
    changed: list[Row] = [r[:9] + (99.0,) + r[10:] for r in _rows("s", 2, first=5)]
    write_segment(folder, rows_to_table(changed), 5, 6, "b", durable=False)
    with pytest.raises(CorruptLogError, match="hold different events 5..6"):
        read_folder(folder, "s")
    found = cover(list_segments(folder), where="f")
    assert [s.writer for s in found.chosen] == ["compact-a"]


def test_an_unreadable_file_is_an_hpostore_error_not_a_raw_one(tmp_path: Path) -> None:
    path = tmp_path / "x.tail"
    path.mkdir()  # a directory where the tail should be
    with pytest.raises(HPOStoreError, match="cannot read the write-ahead tail"):
        read_tail(path)
    assert len(COLUMNS) == 13


def test_a_long_lived_reader_forgets_segments_compacted_away(tmp_path: Path) -> None:
    store = ParquetStore(os.fspath(tmp_path / "runs"))
    with store:
        for i in range(10):
            store.append("s", "suggest", elapsed=1.0, session="x", trial=i, config='{"a":1}')
            store.commit()
        assert store.events("s").num_rows == 10 and len(store._cache) == 10
        store.compact()
        assert store.events("s").num_rows == 10 and len(store._cache) == 1


def test_a_hashed_segment_renamed_without_its_hash_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "runs" / "s"
    folder.mkdir(parents=True)
    seg = write_segment(folder, rows_to_table(_rows("s", 3)), 1, 3, "w", durable=False)
    seg.path.rename(folder / f"{1:012d}-{3:012d}.w.parquet")
    with pytest.raises(CorruptLogError, match="renamed without it"):
        read_folder(folder, "s")


def test_the_tail_after_the_table_must_continue_each_study_once() -> None:
    from hpostore.log.tail import fresh_rows

    rows = _rows("s", 4)
    assert fresh_rows(rows, {"s": 3}, "t") == rows[2:]  # 1, 2 folded before a crash
    with pytest.raises(CorruptLogError, match="jumps from seq 4 to 6"):
        fresh_rows(_rows("s", 1, first=6), {"s": 5}, "t")
    with pytest.raises(CorruptLogError, match="seq 3 twice"):
        fresh_rows(rows + rows[2:3], {"s": 3}, "t")
