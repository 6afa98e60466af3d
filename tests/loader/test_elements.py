"""A chunk's batch elements, one by one or as one run, are the same bytes however they are made."""

from __future__ import annotations

import orjson
import pytest

from widf_loader.elements import Serialised, TextElements

TEXTS = [b'{"a":1}\n', b'{"b":[2,3]}\n', b'{"c":"%d %s %%"}\n']  # a text holding format characters stays as written


@pytest.mark.parametrize("separator", [b",", b"\n"])
def test_a_run_is_the_elements_joined_and_dropping_some_keeps_the_others_indexes(separator):
    written = TextElements(TEXTS, range(7, 10))
    assert written.each() == [b'[7,{"a":1}\n]', b'[8,{"b":[2,3]}\n]', b'[9,{"c":"%d %s %%"}\n]']
    assert written.run(separator) == separator.join(written.each())
    assert [written[o] for o in range(3)] == written.each()
    serialised = Serialised([orjson.dumps((i, orjson.loads(t))) for i, t in zip(range(7, 10), TEXTS, strict=True)])
    assert serialised.run(separator) == separator.join(serialised.each())
    for elements in (written, serialised):
        kept = elements.without({0, 2})
        assert len(kept) == 1 and [orjson.loads(e)[0] for e in kept.each()] == [8]
        assert orjson.loads(b"[" + elements.run(b",") + b"]") == orjson.loads(b"[" + b",".join(elements.each()) + b"]")
