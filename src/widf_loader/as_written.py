"""NDJSON records judged on their own text and loaded as written: neither parsed nor written again.

Most of a file's records need only their route and their contract's verdict, and msgspec reads both
straight from a record's text, skipping (but checking as JSON) the rest of it, in a fraction of the time
a parse into Python objects takes. A record's element in its batch is then its own line, `[index, line]`.
The reader hands over only lines it has screened (widf_loader.reader.Lines: valid UTF-8, within the
limits, no integer beyond 64 bits, no exponent beyond a double's), and anything msgspec cannot vouch for
sends the whole chunk back to the parsed path, which names the bad line as it always has:

- a text that is no JSON, or not an object where a route must read a field;
- a text nested deeper than WIDF_MAX_DEPTH could be (its brackets counted);
- a route whose contract msgspec cannot judge (then no chunk of the file comes as text).

A record its contract's Struct refuses is parsed and judged again by jsonschema-rs, as on the parsed
path. Loaded as written, a key written twice reaches Snowflake twice: the insert's PARSE_JSON is told
`'d'`, which keeps the last value, as orjson's parse did (warehouse.insert_rows_statement).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from itertools import compress, repeat
from operator import attrgetter, not_
from typing import Any

import msgspec
import orjson

from widf_loader.elements import TextElements
from widf_loader.reader import ALL_BUT_BRACKETS
from widf_loader.struct_contract import StructContract

# What sends a chunk back to the parsed path: not JSON, not an object where a field is read, too deep to skip.
NOT_AS_WRITTEN = (msgspec.DecodeError, msgspec.ValidationError, orjson.JSONDecodeError, RecursionError)


class AsWritten:
    """A file's candidate routes, judged on records' texts.

    `contracts[i]` is candidate route i's contract as a Struct (None: no contract); `table` is routing.by_one_field's
    (field, {value: position}, fallback), or None when every record takes the first route.
    """

    def __init__(self, contracts: list[StructContract | None], table: tuple[str, dict[Any, int], int] | None, max_depth: int):
        self.contracts = contracts
        self.max_depth = max_depth
        self.check_json = msgspec.json.Decoder(msgspec.Raw).decode
        self.read_field: Callable[[bytes], Any] | None = None
        self.field_of_fallback: Callable[[Any], Any] | None = None
        self.judges_of_fallback_structs: list[Callable[[list[Any], list[bool]], list[bool]] | None] = []
        if table is not None:
            field, self.positions, self.fallback = table
            struct = msgspec.defstruct("RoutingField", [("value", Any, msgspec.field(name=field, default=None))])
            self.read_field = msgspec.json.Decoder(struct).decode
            # Most records take the last route, the one that takes every record: when its contract reads the
            # routing field, one reading of a text both routes and judges it (a field it lacks is UNSET, which
            # routes as a parsed record's missing field does, to the fallback, unless a route wants null).
            if (fallback := contracts[self.fallback]) is not None and field in fallback.attributes and None not in self.positions:
                self.field_of_fallback = attrgetter(fallback.attributes[field])
                # and the other routes' contracts judge their records from the Structs it has read, when they can
                self.judges_of_fallback_structs = [
                    None if contract is None or position == self.fallback else contract.judge_of_structs_read_by(fallback)
                    for position, contract in enumerate(contracts)
                ]

    def judged(self, texts: list[bytes], first: int) -> tuple[TextElements, list[int] | None, list[int], dict[int, Any]] | None:
        """The chunk's batch elements, each record's route (None: the first's, for all), the offsets of the records
        to judge again, and those records parsed; None to parse the chunk instead."""
        if max(map(len, texts)) > 2 * self.max_depth and self.may_be_too_deep(texts):  # a level takes two brackets
            return None
        try:
            where, failed = self.routed_by_fallback(texts) if self.field_of_fallback is not None else self.routed(texts)
            parsed = {offset: orjson.loads(texts[offset]) for offset in failed}
        except NOT_AS_WRITTEN:
            return None
        return TextElements(texts, range(first, first + len(texts))), where, failed, parsed

    def routed(self, texts: list[bytes]) -> tuple[list[int] | None, list[int]]:
        """Each text's route (None: the first's, for all) and the offsets of those to judge again, in order. Every
        text that no contract reads is checked as JSON."""
        if self.read_field is None:
            where = None
            if self.contracts[0] is None:
                list(map(self.check_json, texts))
        else:
            where = list(map(self.position_of, [found.value for found in map(self.read_field, texts)]))
        judges = [None if contract is None else contract.accepts_all_texts for contract in self.contracts]
        return where, judged_again(where, texts, judges)

    def routed_by_fallback(self, texts: list[bytes]) -> tuple[list[int], list[int]]:
        """routed, each text read by the last route's contract first: only a text that Struct refuses, or one
        that takes another route, is read again."""
        fallback = self.contracts[self.fallback]
        assert fallback is not None and self.field_of_fallback is not None and self.read_field is not None
        structs = fallback.read_texts(texts)
        try:
            values = list(map(self.field_of_fallback, filter(None, structs)))  # a Struct is true, a refusal None
            for offset in offsets_of_none(structs):  # refused by the Struct: the field read on its own
                values.insert(offset, self.read_field(texts[offset]).value)
            where = list(map(self.positions.get, values, repeat(self.fallback)))
        except TypeError:  # an unhashable value
            where = list(map(self.position_of, values))

        # The last route's verdict on every record, then each other route's on its own records: from what the last
        # route's Struct read where the route's contract can judge so, else from their texts; no contract, no judge.
        vouched = fallback.verdicts(structs)
        verdicts = list(vouched)
        for position, contract in enumerate(self.contracts):
            if position == self.fallback or not (offsets := offsets_taking(where, position)):
                continue
            if contract is None:
                mine = [True] * len(offsets)
            elif (judge := self.judges_of_fallback_structs[position]) is not None and None not in (read := picked(structs, offsets)):
                mine = judge(read, picked(vouched, offsets))
            else:
                mine = contract.accepts_all_texts(picked(texts, offsets))
            if mine != picked(vouched, offsets):
                list(map(verdicts.__setitem__, offsets, mine))
        return where, [] if all(verdicts) else list(compress(range(len(texts)), map(not_, verdicts)))

    def position_of(self, value: Any) -> int:
        try:
            return self.positions.get(value, self.fallback)
        except TypeError:  # an unhashable value equals none of the table's scalars
            return self.fallback

    def may_be_too_deep(self, texts: list[bytes]) -> bool:
        """Whether some text holds more brackets than WIDF_MAX_DEPTH allows levels (counted in C: a text's one newline ends it)."""
        brackets = b"".join(texts).translate(None, ALL_BUT_BRACKETS).split(b"\n")
        return max(map(len, brackets)) > self.max_depth


def judged_again(where: list[int] | None, records: list[Any], judges: Sequence[Callable[[list[Any]], list[bool]] | None]) -> list[int]:
    """The offsets, in order, of the records their route's judge (None: nothing to judge) does not vouch for;
    each judge is given the records that take its route, in order (where None: all take the first route)."""
    failed: list[int] = []
    for position, judge in enumerate(judges):
        if judge is None:
            continue
        offsets = range(len(records)) if where is None else offsets_taking(where, position)
        if offsets and not all(verdicts := judge(picked(records, offsets))):
            failed += compress(offsets, map(not_, verdicts))
    return sorted(failed)


def offsets_taking(where: list[int], position: int) -> list[int]:
    """The offsets, in order, of the records that take the route at `position` (found in C)."""
    return list(compress(range(len(where)), map(position.__eq__, where)))


def offsets_of_none(items: list[Any]) -> Iterator[int]:
    """The offsets, in order, of the Nones in items (found in C: there are few)."""
    offset = -1
    try:
        while True:
            offset = items.index(None, offset + 1)
            yield offset
    except ValueError:
        return


def picked(items: list[Any], offsets: Sequence[int]) -> list[Any]:
    """items at offsets, in order (all of them, unchanged, when offsets cover every item)."""
    return items if len(offsets) == len(items) else list(map(items.__getitem__, offsets))
