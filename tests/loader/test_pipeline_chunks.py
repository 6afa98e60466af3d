"""Records taken a chunk at a time load exactly as they would one at a time: same batches, same
rejections, same errors, whatever a chunk holds."""

from __future__ import annotations

import gzip
import io

import orjson
import pytest
from tests.loader.pipelines import CONFIGS, REF, loaded, ndjson, run

from widf_loader import pipeline as pipeline_module
from widf_loader.as_written import AsWritten
from widf_loader.config import ReadLimits
from widf_loader.pipeline import Pipeline
from widf_loader.pipeline_config import DEFAULT_CONFIG, read_pipeline_config
from widf_loader.reader import LimitExceeded, UnreadableFile, iter_records
from widf_local import samples


def mixed_records(count: int = 700) -> list:
    """Sample events with contract breakers, records that are no object, unhashable routing values and long records."""
    records: list = samples.sample_events(count, seed=11)
    for i in range(0, count, 37):
        records[i] = {k: v for k, v in records[i].items() if k != "user_id"}  # breaks either contract
    for i in range(5, count, 53):
        records[i] = {**records[i], "action": "purchase", "amount": -1}  # breaks the purchase contract
    records[100], records[200], records[300] = ["purchase"], "purchase", 42
    records[150] = {**records[150], "action": ["purchase"]}
    records[250] = {**records[250], "action": {"a": 1}}
    for i in range(10, count, 41):
        records[i] = {**records[i], "note": "x" * 500, "lists": [[] for _ in range(60)]}  # long, many brackets, shallow
    return records


def one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every chunk down the per-record path, as for hooks and typed columns."""
    monkeypatch.setattr(Pipeline, "chunk_elements", staticmethod(lambda *args: None))


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
@pytest.mark.parametrize(("batch_rows", "batch_bytes"), [(1000, None), (7, None), (1, None), (50, 3000), (1000, 700)])
def test_chunks_give_the_batches_and_rejections_of_one_record_at_a_time(monkeypatch, config, batch_rows, batch_bytes):
    if batch_bytes is not None:
        monkeypatch.setattr(pipeline_module, "BATCH_BYTES", batch_bytes)
    records = mixed_records()
    chunked, chunked_tally = run(Pipeline(config), records, batch_rows)
    one_at_a_time(monkeypatch)
    single, single_tally = run(Pipeline(config), records, batch_rows)

    def by_statement(batches: list) -> dict:
        out: dict = {}
        for statement, rows in batches:
            out.setdefault(statement, []).append(rows)
        return out

    assert by_statement(chunked) == by_statement(single)  # batch for batch, per table (tables may interleave differently)
    assert chunked_tally == single_tally
    assert chunked_tally.records == len(records)
    assert (chunked_tally.rejected > 0) == any(r.contract for r in config.routes)


def test_chunks_from_the_reader_keep_indexes_as_positions_in_the_file(monkeypatch):
    records = mixed_records(400)
    text = ndjson(records[:200]) + b"\n  \n" + ndjson(records[200:])
    pipeline = Pipeline(read_pipeline_config(DEFAULT_CONFIG))
    for data in (text, gzip.compress(text), orjson.dumps(records)):
        (batches, tally), (expected, expected_tally) = (
            run(pipeline, iter_records(io.BytesIO(data), REF.uri), 1000),
            run(pipeline, records, 1000),
        )
        assert loaded(batches) == loaded(expected)
        assert tally == expected_tally
        assert [i for i, _, _ in tally.rejections][:3] == [0, 5, 37]


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
@pytest.mark.parametrize(("batch_rows", "batch_bytes"), [(1000, None), (7, None), (50, 3000)])
@pytest.mark.parametrize("line_end", [b"\n", b"\r\n", b"  \n"], ids=["LF", "CRLF", "spaces"])
def test_ndjson_lines_loaded_as_written_load_what_parsed_records_load(monkeypatch, config, batch_rows, batch_bytes, line_end):
    """The reader's Lines, judged on their text (widf_loader.as_written), against the same records parsed."""
    if batch_bytes is not None:
        monkeypatch.setattr(pipeline_module, "BATCH_BYTES", batch_bytes)
    records = mixed_records(2000)  # chunks of Lines beyond the few that hold a record that is no object
    pipeline = Pipeline(config)
    as_written_calls = []
    judged = AsWritten.judged
    monkeypatch.setattr(AsWritten, "judged", lambda self, *a: as_written_calls.append(result := judged(self, *a)) or result)
    (batches, tally), (expected, expected_tally) = (
        run(pipeline, iter_records(io.BytesIO(ndjson(records, line_end)), REF.uri), batch_rows),
        run(pipeline, records, batch_rows),
    )
    assert loaded(batches) == loaded(expected)
    assert tally == expected_tally
    taken, parsed = sum(r is not None for r in as_written_calls), sum(r is None for r in as_written_calls)
    assert taken > parsed
    # a chunk with a record that is no object goes to the parsed path where routing reads a field (a contract's
    # Struct refuses such a record, which is then parsed and judged on its own)
    routes_differ = len({(r.contract_path, r.target.name) for r in config.routes}) > 1
    assert (parsed > 0) == routes_differ


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "one-at-a-time"])
def test_a_record_over_the_depth_limit_inside_a_fine_chunk_is_refused_by_its_index(monkeypatch, chunked):
    if not chunked:
        one_at_a_time(monkeypatch)
    deep: dict = {"x": "padding " * 10}
    for _ in range(25):
        deep = {"d": [deep]}
    records = [*samples.sample_events(60, seed=2), deep, *samples.sample_events(60, seed=3)]
    pipeline = Pipeline(read_pipeline_config(DEFAULT_CONFIG))
    with pytest.raises(LimitExceeded, match=r"^s3://b/incoming/f.ndjson record 60: nested deeper than 30 levels \(WIDF_MAX_DEPTH\)$"):
        run(pipeline, records, 1000, ReadLimits(max_depth=30))
    shallow = [*records[:60], {"many": [[] for _ in range(100)]}, *records[61:]]  # more brackets than levels: fine
    assert run(pipeline, shallow, 1000, ReadLimits(max_depth=30))[1].records == len(shallow)


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "one-at-a-time"])
def test_a_record_over_the_size_limit_or_beyond_orjson_is_refused_by_its_index(monkeypatch, chunked):
    if not chunked:
        one_at_a_time(monkeypatch)
    pipeline = Pipeline(read_pipeline_config(DEFAULT_CONFIG))
    events = samples.sample_events(90, seed=5)
    big = [*events[:70], {**events[70], "note": "x" * 2000}, *events[71:]]
    with pytest.raises(LimitExceeded, match=r"record 70: \d+ bytes, over the 1000-byte limit \(WIDF_MAX_RECORD_BYTES\)"):
        run(pipeline, big, 1000, ReadLimits(max_record_bytes=1000))
    deepest: list = []
    for _ in range(300):
        deepest = [deepest]
    with pytest.raises(LimitExceeded, match=r"record 40: nested deeper than 200 levels \(WIDF_MAX_DEPTH\) \("):
        run(pipeline, [*events[:40], deepest, *events[40:]], 1000)


def test_the_reader_hands_on_the_records_before_a_bad_line_then_names_it():
    lines = [orjson.dumps({"n": i}) for i in range(300)]
    lines[199] = b'{"broken": '
    records = []
    with pytest.raises(UnreadableFile, match=r"s3://b/k line 200: not valid JSON"):
        for record in iter_records(io.BytesIO(b"\n".join(lines) + b"\n"), "s3://b/k"):
            records.append(record)
    assert records == [{"n": i} for i in range(199)]


def test_the_reader_hands_on_the_items_before_a_broken_array_then_names_it():
    data = orjson.dumps([{"n": i} for i in range(300)])[:-1] + b", {"
    records = []
    with pytest.raises(UnreadableFile, match=r"invalid JSON array after record 300"):
        for record in iter_records(io.BytesIO(data), "s3://b/k"):
            records.append(record)
    assert records == [{"n": i} for i in range(300)]


def test_chunks_of_lines_with_blank_lines_and_twenty_digits_read_as_lines():
    lines = [orjson.dumps({"n": i}) for i in range(400)]
    text = b"\n".join(lines[:150]) + b"\n\r\n\n" + b"\n".join(lines[150:]) + b'\n{"s": "123456789012345678901234"}\n'
    assert list(iter_records(io.BytesIO(text), "s3://b/k")) == [{"n": i} for i in range(400)] + [{"s": "123456789012345678901234"}]
    with pytest.raises(UnreadableFile, match=r"line 404: integer 18446744073709551616\.\.\. is beyond 64 bits"):
        list(iter_records(io.BytesIO(text + b'{"n": 18446744073709551616}\n'), "s3://b/k"))


@pytest.mark.parametrize("chunked", [True, False])
def test_quarantined_records_are_cut_into_batches_that_each_fit_one_binary(monkeypatch, chunked):
    if not chunked:
        one_at_a_time(monkeypatch)
    big_and_bad = [{"event_id": f"e{i}", "note": "x" * 60_000} for i in range(300)]  # no user_id, ~18 MB in all
    pipeline = Pipeline(read_pipeline_config(DEFAULT_CONFIG))
    batches, tally = run(pipeline, big_and_bad, batch_rows=50_000)
    quarantine = [rows for statement, rows in batches if statement == pipeline.reject_statement]
    assert len(quarantine) >= 3 and tally.rejected == 300
    arrays = [rows[0][-1].json for rows in quarantine]  # one row per batch: the file's context, then the records
    assert all(len(array) <= pipeline_module.BATCH_BYTES for array in arrays)
    elements = [element for array in arrays for element in orjson.loads(array)]
    assert [e[0] for e in elements] == list(range(300))  # every record once, in file order
    assert all(e[3] == orjson.dumps(r).decode() for e, r in zip(elements, big_and_bad, strict=True))  # the raw record as it was
    assert quarantine[0][0][:3] == (REF.uri, REF.key, "L")
