"""A contract as a msgspec Struct: a chunk of records judged in one C-level pass.

jsonschema-rs spends most of a record's time converting the Python object into its own, field by
field; msgspec reads a dict straight into a Struct of the contract's properties and skips the rest.
It is used only where it is safe: for each property the Struct's type accepts no value that the
property's schema refuses (it may refuse some the schema accepts, such as 1.0 for an integer).
`format` and `pattern` are left to jsonschema-rs, over the chunk's values of that property at once.
A record the Struct refuses is judged again by jsonschema-rs, which has the last word, so a contract
judges every record exactly as jsonschema-rs does (tests/loader/test_contract.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from itertools import repeat
from operator import attrgetter, is_not
from typing import Annotated, Any, Literal, Union

import jsonschema_rs
import msgspec

ANNOTATIONS = frozenset({"title", "description", "examples", "default", "deprecated", "readOnly", "writeOnly", "$comment"})
TYPES: dict[str, Any] = {"string": str, "number": float, "integer": int, "boolean": bool, "null": None, "array": list, "object": dict}
BOUNDS = {"minimum": "ge", "maximum": "le", "exclusiveMinimum": "gt", "exclusiveMaximum": "lt"}
LENGTHS = {"minLength": "min_length", "maxLength": "max_length"}
LEFT_TO_JSONSCHEMA = frozenset({"format", "pattern"})
# msgspec compares a number with a bound as floats: exact for a bound a float holds exactly, since rounding is monotonic.
EXACT_FLOAT = 2**53


def type_names(schema: Mapping[str, Any], default: str | None = None) -> list[Any] | None:
    """The names in a schema's `type`, one or a list, as a list (`default` when it has none); None for any other value."""
    kinds = schema.get("type", default)
    if kinds is None:
        return None
    names = [kinds] if isinstance(kinds, str) else kinds
    return names if isinstance(names, list) else None


def admits_objects(schema: Mapping[str, Any]) -> bool:
    """Whether a root schema's `type` lets an object through (no `type` does)."""
    return "object" in (type_names(schema, "object") or [])


def property_type(schema: Any) -> Any:
    """The msgspec type that accepts no value `schema` (one property's subschema) refuses; None if there is none."""
    if schema is True:
        return Any
    if not isinstance(schema, Mapping):
        return None
    keywords = schema.keys() - ANNOTATIONS - LEFT_TO_JSONSCHEMA
    if keywords & {"const", "enum"}:
        return literal_type(schema, keywords)
    names = type_names(schema)
    if not keywords <= {"type", *BOUNDS, *LENGTHS} or not names:
        return None  # no type: every other keyword applies to some types only, which msgspec cannot say
    if not all(isinstance(n, str) and n in TYPES for n in names) or len(set(names)) != len(names):
        return None
    lengths = {LENGTHS[k]: schema[k] for k in keywords & LENGTHS.keys()}
    bounds = {BOUNDS[k]: schema[k] for k in keywords & BOUNDS.keys()}
    if not all(type(v) is int and v >= 0 for v in lengths.values()):
        return None
    if not all(type(v) in (int, float) and abs(v) <= EXACT_FLOAT for v in bounds.values()):
        return None
    types = []
    for name in names:
        if name == "integer" and "number" in names:
            continue  # a number takes every integer
        kind = TYPES[name]
        constraints = lengths if name == "string" else bounds if name in ("number", "integer") else {}
        types.append(Annotated[kind, msgspec.Meta(**constraints)] if constraints else kind)
    # A length or bound on no type it applies to constrains nothing: JSON Schema ignores it there too.
    return Union[tuple(types)] if len(types) > 1 else types[0]  # noqa: UP007 - a union built from a list


def literal_type(schema: Mapping[str, Any], keywords: set[str]) -> Any:
    """`const` or `enum` of strings, or of integers (not booleans), as a Literal; None otherwise."""
    if keywords - {"type", "const", "enum"} or {"const", "enum"} <= keywords:
        return None
    values = [schema["const"]] if "const" in schema else schema["enum"]
    if not isinstance(values, list) or not values:
        return None
    if all(type(v) is str for v in values):
        name = "string"
    elif all(type(v) is int for v in values):
        name = "integer"
    else:
        return None
    names = type_names(schema, name) or []
    if name not in names and not (name == "integer" and "number" in names):
        return None  # a type that refuses the values: nothing is valid, which a Literal would not say
    return Literal[tuple(values)]


class StructContract:
    """A property-wise contract (see contract.named_properties) compiled to a Struct, with the properties whose
    `format` or `pattern` jsonschema-rs judges."""

    def __init__(
        self, struct: type[msgspec.Struct], left: dict[str, Any], rules: dict[str, tuple[Any, bool]], kinds: dict[str, Any], draft: Any
    ):
        self.many = list[struct]  # type: ignore[valid-type]  # a Struct type made at run time
        self.left = left  # property name -> validator of an array of that property's values
        self.rules = rules  # property name -> (its subschema, whether it is required)
        self.lists_of = {name: list[kind] for name, kind in kinds.items()}  # type: ignore[valid-type]  # property name -> a list of its msgspec type
        self.draft = draft  # the contract's $schema
        self.decode_one = msgspec.json.Decoder(struct).decode
        self.convert_one = partial(msgspec.convert, type=struct)
        self.attributes = {
            name: attribute for attribute, name in zip(struct.__struct_fields__, struct.__struct_encode_fields__, strict=True)
        }

    def accepts_all(self, records: list[Any]) -> list[bool]:
        """For each record, whether it keeps the contract for certain; False: judge it again (see module docstring)."""
        try:
            structs = msgspec.convert(records, self.many)
        except msgspec.ValidationError:  # some record does not fit: find which
            structs = self.each(self.convert_one, records)
        return self.verdicts(structs)

    def accepts_all_texts(self, texts: list[bytes]) -> list[bool]:
        """accepts_all over records' JSON texts, each read straight into the Struct, the rest of it only checked
        as JSON (a text the Struct refuses is read no further); msgspec.DecodeError when a text is not JSON."""
        return self.verdicts(self.read_texts(texts))

    def read_texts(self, texts: list[bytes]) -> list[Any]:
        """Each text's Struct, None for one it refuses (see accepts_all_texts)."""
        return self.each(self.decode_one, texts)

    @staticmethod
    def each(read: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        """Each item read into the Struct; None for one the Struct refuses."""
        structs: list[Any] = []
        while len(structs) < len(items):
            try:  # list.extend keeps what the map gave before it raised: the item that does not fit is next
                structs.extend(map(read, items[len(structs) :] if structs else items))
            except msgspec.ValidationError:
                structs.append(None)
        return structs

    def judge_of_structs_read_by(self, other: StructContract) -> Callable[[list[Any], list[bool]], list[bool]] | None:
        """This contract's verdicts on records `other`'s Struct has read (none refused), from those Structs and
        `other`'s verdicts on them, with no second reading of the texts; None when `other` does not read every
        property this contract names.

        A record keeps this contract for certain when `other` vouches for it and each property whose rule differs
        keeps this contract's: present if required, and its value as `other` read it converts to this contract's
        type (msgspec's convert is as strict as its decoding: 5.0 is no integer, true no number) and passes its
        format or pattern. False, as ever, only means: judge it again.
        """
        if self.draft != other.draft or not self.rules.keys() <= other.rules.keys():
            return None
        differ = [(attrgetter(other.attributes[name]), name) for name, rule in self.rules.items() if rule != other.rules[name]]

        def judge(structs: list[Any], vouched: list[bool]) -> list[bool]:
            verdicts = vouched
            for value_of, name in differ:
                values = list(map(value_of, structs))
                if msgspec.UNSET in values or not self.fit(name, values):  # find the records that break the rule
                    required = self.rules[name][1]
                    verdicts = [
                        verdict and (not required if value is msgspec.UNSET else self.fit(name, [value]))
                        for verdict, value in zip(verdicts, values, strict=True)
                    ]
            return verdicts

        return judge

    def fit(self, name: str, values: list[Any]) -> bool:
        """Whether every value, as another contract's Struct read it, keeps this contract's rule for the property."""
        try:
            msgspec.convert(values, self.lists_of[name])
        except msgspec.ValidationError:
            return False
        validator = self.left.get(name)
        return validator is None or validator.is_valid(values)

    def verdicts(self, structs: list[Any]) -> list[bool]:
        """For each Struct (None: refused), whether its record keeps the contract for certain; False: judge it again."""
        if None in structs:
            verdicts, read = list(map(is_not, structs, repeat(None))), list(filter(None, structs))  # a Struct is true
        else:
            verdicts, read = [True] * len(structs), structs
        for name, validator in self.left.items():
            attribute = attrgetter(self.attributes[name])
            values = list(filter(partial(is_not, msgspec.UNSET), map(attribute, read)))  # in C
            if values and not validator.is_valid(values):  # some value breaks its format or pattern: judge again all that have one
                verdicts = [verdict and attribute(struct) is msgspec.UNSET for verdict, struct in zip(verdicts, structs, strict=True)]
        return verdicts


def struct_contract(contract: Mapping[str, Any], names: tuple[str, ...]) -> StructContract | None:
    """The contract as a StructContract, when every property it names translates; else None."""
    properties, required = contract.get("properties", {}), set(contract.get("required", []))
    if not admits_objects(contract):
        return None
    fields: list[tuple[str, Any, Any]] = []
    left, rules, kinds = {}, {}, {}
    for position, name in enumerate(names):
        schema = properties.get(name, True)
        kind = property_type(schema)
        if kind is None:
            return None
        rules[name], kinds[name] = (schema, name in required), kind
        if name in required:
            fields.append((f"p{position}", kind, msgspec.field(name=name)))
        else:
            fields.append((f"p{position}", Union[kind, msgspec.UnsetType], msgspec.field(name=name, default=msgspec.UNSET)))  # noqa: UP007
        if isinstance(schema, Mapping) and schema.keys() & LEFT_TO_JSONSCHEMA:
            array = {"type": "array", "items": dict(schema)}
            if "$schema" in contract:
                array["$schema"] = contract["$schema"]
            left[name] = jsonschema_rs.validator_for(array, validate_formats=True)
    try:
        struct = msgspec.defstruct("Contract", fields, kw_only=True)
        msgspec.json.Decoder(list[struct])  # type: ignore[valid-type]  # msgspec refuses a union it cannot judge here
    except TypeError:
        return None
    return StructContract(struct, left, rules, kinds, contract.get("$schema"))
