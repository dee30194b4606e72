"""Checks and error translation shared by the Word, Excel and PowerPoint decoders."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager

from kernel_memory.errors import PermanentError

# Largest total uncompressed size of a package's parts. A guard against ZIP bombs, not a tuned limit:
# a 100 MB workbook unpacks to roughly 1 GB of XML (an estimate: XML compresses about tenfold).
MAX_UNCOMPRESSED_BYTES = 2 * 1024**3


def check_package(data: bytes, *, file_name: str, kind: str) -> None:
    """Raise `PermanentError` when `data` is not a readable ZIP package or unpacks to too much."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            total = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise PermanentError(
            f"cannot read {kind} file {file_name!r}: it is not a valid ZIP package ({error}); "
            "the file is damaged or has the wrong extension"
        ) from error
    if total > MAX_UNCOMPRESSED_BYTES:
        raise PermanentError(
            f"cannot read {kind} file {file_name!r}: its parts unpack to {total:,} bytes, "
            f"over the limit of {MAX_UNCOMPRESSED_BYTES:,}; split the file and upload the parts"
        )


@contextmanager
def translate_errors(*, file_name: str, kind: str) -> Iterator[None]:
    """Turn the errors that damaged packages cause in the Office libraries into `PermanentError`."""
    from lxml.etree import XMLSyntaxError

    try:
        yield
    except (zipfile.BadZipFile, KeyError, ValueError, XMLSyntaxError, EOFError) as error:
        # A KeyError means a part named in the relationships is missing. A ValueError means a wrong
        # content type, or a malformed value that the library could not convert.
        raise PermanentError(
            f"cannot read {kind} file {file_name!r}: {type(error).__name__}: {error}; "
            f"the file is damaged, or is not a {kind} file; open and save it again in its application"
        ) from error
