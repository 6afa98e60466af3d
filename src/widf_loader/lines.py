"""NDJSON records judged in the lines they came in, not parsed whole: the loader's fast path.

Where no hook or typed column needs a record as a Python object, and every route it can take is chosen
by one top-level field and has no contract or one a Struct judges (widf_loader.struct_contract), a
line's route and verdict need only the fields the routes and contracts name. msgspec decodes just those,
skipping the rest while checking its syntax, and the line itself is loaded: no parse of the whole record
and no serialisation. The reader's LineChunk guarantees what such a decoder does not check (UTF-8, the
size and range limits); a line that is not one JSON object (a blank line, bad JSON) sends its chunk to
the parsed path, which names it. The records a contract refuses are parsed, for jsonschema-rs's reasons.

Loaded as sent, a line keeps its numbers as written (`1.50`, not the 1.5 a parse and serialisation would
make); its duplicate keys reach Snowflake too, whose PARSE_JSON(..., 'd') keeps each key's last value, as
a parse does (see warehouse.insert_rows_statement).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import compress, repeat
from operator import attrgetter
from typing import Any

import msgspec
import orjson

from widf_loader.struct_contract import StructContract

_LINE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, RecursionError)  # msgspec recurses into nesting


class _Syntax(msgspec.Struct):
    """Any object: decoding into it checks a line's syntax and reads nothing."""


class LineJudge:
    """Per file: each line's route, as its position among the file's candidate routes, and whether it keeps that
    route's contract, from the lines of a LineChunk."""

    def __init__(self, contracts: list[StructContract | None], table: tuple[str, dict[Any, int], int] | None):
        """`contracts`: each candidate route's Struct (None: no contract); `table`: routing by one field
        (routing.by_one_field), None when every record takes the first candidate."""
        self.contracts, self.table = contracts, table
        self.syntax = msgspec.json.Decoder(_Syntax).decode
        self.pick: Callable[[bytes], Any] | None = None  # decodes a line's routing field alone, as `.value`
        self.routing_attribute: str | None = None
        if table is not None:
            field, _, fallback = table
            pick = msgspec.defstruct("Route", [("value", Any, msgspec.field(name=field, default=None))])
            self.pick = msgspec.json.Decoder(pick).decode
            # Most lines take the last route: when its Struct reads the routing field, one decode routes and judges them.
            if (last := contracts[fallback]) is not None:
                self.routing_attribute = last.attributes.get(field)

    def judged(self, lines: list[bytes]) -> tuple[list[int] | None, list[int], dict[int, Any]] | None:
        """(each line's position, or None: the first's for all; the offsets of the lines their route's Struct refuses,
        in order; those lines parsed), or None when a line is not a JSON object (the parsed path names it)."""
        try:
            where, failed = self.routed(lines) if self.table is not None else (None, self.refused(self.contracts[0], lines, None))
        except (*_LINE_ERRORS, TypeError):  # TypeError: an unhashable routing value, which the parsed path routes
            return None
        try:  # a refused line may be bad JSON after the field refused
            parsed = {offset: orjson.loads(lines[offset]) for offset in failed}
        except orjson.JSONDecodeError:
            return None
        return where, failed, parsed

    def routed(self, lines: list[bytes]) -> tuple[list[int], list[int]]:
        assert self.table is not None and self.pick is not None
        _, positions, fallback = self.table
        structs = None
        if self.routing_attribute is not None:
            last = self.contracts[fallback]
            assert last is not None
            structs = last.structs_of_lines(lines)
            attribute, pick, unset = self.routing_attribute, self.pick, msgspec.UNSET
            if None in structs:  # a line the last route's Struct refuses is routed by its field alone (its syntax checked there too)
                values = [pick(line).value if s is None else getattr(s, attribute) for s, line in zip(structs, lines, strict=True)]
            else:
                values = list(map(attrgetter(attribute), structs))
            if unset in values:  # absent: None, as record.get(field) is
                values = [None if v is unset else v for v in values]
        else:
            values = list(map(attrgetter("value"), map(self.pick, lines)))  # absent or null: None, as record.get(field) is
        where = list(map(positions.get, values, repeat(fallback)))
        failed: list[int] = []
        for position, contract in enumerate(self.contracts):
            if contract is None:
                continue
            offsets = list(compress(range(len(lines)), map(position.__eq__, where)))
            if offsets:
                decoded = [structs[o] for o in offsets] if structs is not None and position == fallback else None
                failed += self.refused(contract, [lines[o] for o in offsets], decoded, offsets)
        return where, sorted(failed)

    def refused(
        self, contract: StructContract | None, lines: list[bytes], decoded: list[Any] | None, offsets: list[int] | None = None
    ) -> list[int]:
        """The offsets (of `offsets`, else of the lines) of the lines the contract's Struct refuses; with no contract,
        none, each line's syntax checked. `decoded`: the lines' Structs, when already decoded."""
        if contract is None:
            for _ in map(self.syntax, lines):
                pass
            return []
        verdicts = contract.verdicts(contract.structs_of_lines(lines) if decoded is None else decoded)
        if all(verdicts):
            return []
        return [o for o, verdict in zip(offsets or range(len(lines)), verdicts, strict=True) if not verdict]
