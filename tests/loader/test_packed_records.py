"""A batch's records, packed as the loader binds them (Snowflake reads them back with DECOMPRESS_STRING)."""

from __future__ import annotations

import base64
import os

from widf_loader.pipeline import BATCH_BYTES, SNOWFLAKE_BINARY_MAX_BYTES
from widf_loader.warehouse import packed_records


def test_packed_records_are_snappy_as_snowflakes_compress_writes_it():
    # COMPRESS('Snowflake', 'SNAPPY') = 0920536E6F77666C616B65, from Snowflake's documentation of COMPRESS
    assert packed_records(b"Snowflake") == base64.b64encode(bytes.fromhex("0920536E6F77666C616B65")).decode()


def test_a_full_batch_packs_into_one_snowflake_binary_however_badly_it_compresses():
    noise = base64.b85encode(os.urandom(BATCH_BYTES))[: BATCH_BYTES - 4]  # no quote, no backslash: JSON as it is
    array = b'["' + noise + b'"]'
    assert len(array) == BATCH_BYTES
    assert len(base64.b64decode(packed_records(array))) <= SNOWFLAKE_BINARY_MAX_BYTES
