"""Fitting a file under a channel's upload limit: as it is, zipped, or zipped and split."""

from __future__ import annotations

import io
import zipfile

# Telegram bots may upload files of up to 50 MB.
TELEGRAM_UPLOAD_LIMIT = 50 * 1000 * 1000


def for_upload(
    name: str, data: bytes, limit: int = TELEGRAM_UPLOAD_LIMIT
) -> list[tuple[str, bytes]]:
    """The file itself when it fits; else a ZIP of it; else that ZIP in numbered parts.

    Parts are plain byte ranges named `NAME.zip.001`, `.002`, ...: 7-Zip opens the first part
    directly, and `cat NAME.zip.0* > NAME.zip` joins them anywhere.
    """
    if len(data) <= limit:
        return [(name, data)]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr(name, data)
    zipped = buffer.getvalue()
    archive_name = f"{name}.zip"
    if len(zipped) <= limit:
        return [(archive_name, zipped)]
    return [
        (f"{archive_name}.{number:03d}", zipped[start : start + limit])
        for number, start in enumerate(range(0, len(zipped), limit), start=1)
    ]
