"""Files over Telegram's upload limit: zipped, and split when still too large."""

from __future__ import annotations

import io
import os
import zipfile

from bot.core.packaging import for_upload


def test_a_file_that_fits_goes_as_it_is() -> None:
    assert for_upload("data.csv", b"a,b\n", limit=10) == [("data.csv", b"a,b\n")]


def test_a_large_file_that_compresses_goes_zipped() -> None:
    data = b"NIK,Nama\n" * 1000
    [(name, content)] = for_upload("data.csv", data, limit=2000)
    assert name == "data.csv.zip"
    assert zipfile.ZipFile(io.BytesIO(content)).read("data.csv") == data


def test_a_file_still_too_large_when_zipped_comes_in_parts_that_join_up() -> None:
    """Random bytes do not compress: the ZIP is cut into numbered parts under the limit."""
    data = os.urandom(5000)
    parts = for_upload("data.xlsx", data, limit=2000)
    assert [name for name, _ in parts] == [f"data.xlsx.zip.00{n}" for n in (1, 2, 3)]
    assert all(len(content) <= 2000 for _, content in parts)
    joined = b"".join(content for _, content in parts)
    assert zipfile.ZipFile(io.BytesIO(joined)).read("data.xlsx") == data
