"""The msgspec side of reading plain JSON histories (see
:func:`jepsy.history.decode_json_ops`), in a module of its own so that
jepsy still reads histories, through orjson or json, where msgspec cannot
be imported."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

__all__ = ["ARRAY", "LINES", "ONE_ARRAY", "DecodeError", "JsonOp"]


class JsonOp(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """One op of a plain JSON history, as msgspec decodes it: typed in C.

    msgspec refuses what :func:`jepsy.history.op_from_mapping` would change
    or refuse (a bool or float where an int goes, a null ``f``, another
    ``type``, an unknown field), and the caller then takes the dict path.
    No cycles can form through decoded JSON, so the collector need not
    track these."""

    process: int | str
    type: Literal["invoke", "ok", "fail", "info"]
    f: str
    index: int | None = None
    time: int | None = None
    value: Any = None
    node: str | None = None
    error: Any = None


LINES = msgspec.json.Decoder(JsonOp)
ARRAY = msgspec.json.Decoder(list[JsonOp])
ONE_ARRAY = msgspec.json.Decoder(tuple[list[JsonOp]])
DecodeError = msgspec.DecodeError
