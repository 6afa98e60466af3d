"""A chunk's batch elements, `[index, record]`: one per record, or all of them as one run.

Most often a chunk's records all join the same pending batch (widf_loader.pipeline), and then its
elements are only ever joined: a run, made in one call, costs a fraction of a bytes object per
record, which the allocator and the join then pay for again. The elements one by one are made only
when a chunk must be split: a record refused, routes to several tables, or a batch that fills.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from functools import lru_cache
from itertools import chain
from typing import Protocol, TypeVar

# A record's element in its batch when loaded as written: its index in the file, then its text (whose
# newline is only whitespace inside the array).
ELEMENT = b"[%d,%b]"
T = TypeVar("T")


class ChunkElements(Protocol):
    def __len__(self) -> int: ...

    def __getitem__(self, offset: int) -> bytes:
        """One record's element."""

    def each(self) -> list[bytes]:
        """The elements, one per record."""

    def run(self, separator: bytes) -> bytes:
        """The elements joined by `separator`, as a batch is packed."""

    def without(self, offsets: Collection[int]) -> ChunkElements:
        """The elements but those at these offsets."""


class Serialised:
    """Elements already made, one per record (the parsed path serialises each record anyway)."""

    __slots__ = ("elements",)

    def __init__(self, elements: list[bytes]):
        self.elements = elements

    def __len__(self) -> int:
        return len(self.elements)

    def __getitem__(self, offset: int) -> bytes:
        return self.elements[offset]

    def each(self) -> list[bytes]:
        return self.elements

    def run(self, separator: bytes) -> bytes:
        return separator.join(self.elements)

    def without(self, offsets: Collection[int]) -> Serialised:
        return Serialised(without(self.elements, offsets))


class TextElements:
    """The elements of records loaded as written (widf_loader.as_written), from their texts, made as asked."""

    __slots__ = ("indexes", "texts")

    def __init__(self, texts: list[bytes], indexes: Sequence[int]):
        self.texts = texts
        self.indexes = indexes  # each record's index in the file

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, offset: int) -> bytes:
        return ELEMENT % (self.indexes[offset], self.texts[offset])

    def each(self) -> list[bytes]:
        return list(map(ELEMENT.__mod__, zip(self.indexes, self.texts, strict=True)))

    def run(self, separator: bytes) -> bytes:
        return run_format(len(self.texts), separator) % tuple(chain.from_iterable(zip(self.indexes, self.texts, strict=True)))

    def without(self, offsets: Collection[int]) -> TextElements:
        return TextElements(without(self.texts, offsets), without(self.indexes, offsets))


def without(items: Sequence[T], offsets: Collection[int]) -> list[T]:
    """The items but those at these offsets (few: each is deleted from a copy, in C)."""
    kept = list(items)
    for offset in sorted(offsets, reverse=True):
        del kept[offset]
    return kept


@lru_cache(maxsize=16)
def run_format(records: int, separator: bytes) -> bytes:
    """The format of a run of `records` elements: most chunks have the same number of lines."""
    return separator.join([ELEMENT] * records)
