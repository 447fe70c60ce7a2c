"""How deep a JSON or UBJSON document nests, found without parsing it into objects.

XGBoost's model parser is recursive: a model file nested some 50,000 levels deep overflows its
stack and kills the process (a segfault, measured with XGBoost 3 on an 8 MB stack). A model
XGBoost writes nests under ten levels, so `serve` refuses anything deeper than
`MAX_MODEL_NESTING` before XGBoost sees it. Both scans stop as soon as they pass the limit.
"""

from __future__ import annotations

import re
import struct

MAX_MODEL_NESTING = 128
"""Far above the nesting of any model XGBoost writes, far below where its parser crashes."""

_JSON_TOKENS = re.compile(rb'"(?:[^"\\]|\\.?)*+(?:"|\Z)|[\[\]{}]', re.DOTALL)
"""A whole string (so that brackets inside names do not count) or one bracket."""
_OPENERS = frozenset(b"[{")
_UBJSON_SIZES = {ord(k): size for k, size in zip("iUIlLdDC", (1, 1, 2, 4, 8, 4, 8, 1), strict=True)}
_UBJSON_INTEGERS = {ord("i"): ">b", ord("U"): ">B", ord("I"): ">h", ord("l"): ">i", ord("L"): ">q"}
_EMPTY = frozenset(b"ZNTF")


def json_depth(data: bytes | bytearray, limit: int = MAX_MODEL_NESTING) -> int:
    """The deepest nesting of arrays and objects in JSON `data`; stops once past `limit`."""
    depth = deepest = 0
    for match in _JSON_TOKENS.finditer(data):
        first = match.group()[0]
        if first in _OPENERS:
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        elif first != 0x22:  # a closing bracket; a string counts for nothing
            depth -= 1
    return deepest


class _Reader:
    """A cursor over UBJSON bytes; every read past the end raises `ValueError`."""

    def __init__(self, data: bytes | bytearray) -> None:
        self.data = memoryview(data)
        self.at = 0

    def byte(self) -> int:
        if self.at >= len(self.data):
            raise ValueError("the UBJSON document ends early")
        self.at += 1
        return self.data[self.at - 1]

    def skip(self, count: int) -> None:
        if count < 0 or self.at + count > len(self.data):
            raise ValueError("the UBJSON document ends early")
        self.at += count

    def integer(self, marker: int) -> int:
        fmt = _UBJSON_INTEGERS.get(marker)
        if fmt is None:
            raise ValueError(f"a UBJSON length has type {chr(marker)!r}, not an integer")
        size = struct.calcsize(fmt)
        self.skip(size)
        return struct.unpack_from(fmt, self.data, self.at - size)[0]

    def value(self, marker: int) -> None:
        """Skip one scalar value whose type marker has been read."""
        if marker in _EMPTY:
            return
        if marker in _UBJSON_SIZES:
            self.skip(_UBJSON_SIZES[marker])
        elif marker in (ord("S"), ord("H")):
            self.skip(self.integer(self.byte()))
        else:
            raise ValueError(f"unknown UBJSON type marker {chr(marker)!r}")


def ubjson_depth(data: bytes | bytearray, limit: int = MAX_MODEL_NESTING) -> int:
    """The deepest nesting of arrays and objects in UBJSON `data`; stops once past `limit`.

    Typed containers (`[$d#L<count>`, how XGBoost writes its arrays) are skipped whole.
    """
    reader = _Reader(data)
    # Each open container: [is_object, items left (-1: until its closing marker), item type]
    stack: list[list[int]] = []
    deepest = 0
    marker = reader.byte()
    while True:
        if marker in _OPENERS:
            item_type, count = 0, -1
            nxt = reader.byte()
            if nxt == ord("$"):
                item_type = reader.byte()
                nxt = reader.byte()
            if nxt == ord("#"):
                count = reader.integer(reader.byte())
            else:
                reader.at -= 1
            is_object = marker == ord("{")
            if item_type and item_type not in _OPENERS and not is_object:
                reader.skip(count * _UBJSON_SIZES.get(item_type, 0))  # a typed array of scalars
                count = 0
            stack.append([is_object, count, item_type])
            deepest = max(deepest, len(stack))
            if deepest > limit:
                return deepest
        elif marker in (ord("]"), ord("}")):
            raise ValueError("a UBJSON container closes where a value belongs")
        else:
            reader.value(marker)
        # Find the next value's marker, closing the containers that are done.
        while stack:
            is_object, count, item_type = stack[-1]
            if count == 0:
                stack.pop()
                continue
            if count < 0:
                peek = reader.byte()
                if peek in (ord("]"), ord("}")):
                    stack.pop()
                    continue
                reader.at -= 1
            else:
                stack[-1][1] -= 1
            if is_object:
                reader.skip(reader.integer(reader.byte()))  # the key
            marker = item_type or reader.byte()
            break
        else:
            return deepest
