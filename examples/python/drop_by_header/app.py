"""Ferry record filter in Python: drops the records that carry a given header.

The twin of examples/plugins/drop-by-header (Rust); both pass the same integration test.

Configuration (`filters = [{ uses = "drop_by_header.wasm", with = { ... } }]`):
- `header` (required): the header name, e.g. `env`;
- `value` (optional): drop only when the header has this value (compared as UTF-8 bytes);
  without it, any record carrying the header is dropped.

Ferry calls `filter` once per batch with a packed, struct-of-arrays batch (see the
`ferry:plugin/types` interface in wit/records.wit); this file reads that layout directly.

Build: scripts/build-python-plugins (componentize-py, world `filter` of wit/).
"""

from typing import List, Tuple

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import types

KEEP = 0
DROP = 1
NULL_LENGTH = 0xFFFFFFFF
RECORD_STRIDE = 6  # key-offset, key-length, value-offset, value-length, first-header, header-count
HEADER_STRIDE = 4  # key-offset, key-length, value-offset, value-length


class Settings:
    """What `init` read. Module state: componentize-py may create a new `RecordFilter` object
    for each call, so anything kept on `self` would be lost."""

    header = b""
    value = None


class RecordFilter(exports.RecordFilter):
    """The `ferry:plugin/record-filter` export."""

    def init(self, config: List[Tuple[str, str]]) -> None:
        settings = dict(config)
        header = settings.get("header", "")
        if not header:
            raise Err("`header` is required: the name of the header to drop by")
        Settings.header = header.encode()
        value = settings.get("value")
        Settings.value = None if value is None else value.encode()

    def filter(self, origin: types.BatchOrigin, batch: types.RecordBatch) -> types.FilterResult:
        data = batch.data
        records = batch.records
        headers = batch.headers
        wanted_key = Settings.header
        wanted_value = Settings.value
        count = len(records) // RECORD_STRIDE
        verdicts = bytearray(count)
        for index in range(count):
            base = index * RECORD_STRIDE
            first = records[base + 4]
            for header in range(first, first + records[base + 5]):
                h = header * HEADER_STRIDE
                key_offset, key_length = headers[h], headers[h + 1]
                if data[key_offset:key_offset + key_length] != wanted_key:
                    continue
                if wanted_value is not None:
                    value_offset, value_length = headers[h + 2], headers[h + 3]
                    if value_length == NULL_LENGTH:
                        continue
                    if data[value_offset:value_offset + value_length] != wanted_value:
                        continue
                verdicts[index] = DROP
                break
        return types.FilterResult(verdicts=bytes(verdicts), errors=[])
