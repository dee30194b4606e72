"""Checks and error translation shared by the Word, Excel and PowerPoint decoders."""

from __future__ import annotations

import io
import zipfile
import zlib
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
    except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError, ValueError) as error:
        # A damaged central directory can point before the start of the file (ValueError) or name
        # a ZIP version that Python does not read (NotImplementedError).
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
    from xml.etree.ElementTree import ParseError

    from lxml.etree import XMLSyntaxError

    damaged = (zipfile.BadZipFile, zlib.error, NotImplementedError, EOFError, KeyError, ValueError)
    try:
        yield
    except (*damaged, XMLSyntaxError, ParseError) as error:
        # A KeyError means a part named in the relationships is missing. A ValueError means a wrong
        # content type, or a malformed value that the library could not convert. A zlib.error means
        # a part's compressed data is damaged, and a NotImplementedError a ZIP feature that Python
        # does not read. ParseError comes from openpyxl, which parses sheets with ElementTree.
        raise PermanentError(
            f"cannot read {kind} file {file_name!r}: {_error_name(error)}: {error}; "
            f"the file is damaged or is not a valid {kind} file: open it in its application and save it again"
        ) from error


def _error_name(error: BaseException) -> str:
    """Return the error's class name, qualified by its module unless built in (`zlib.error`, `KeyError`)."""
    error_type = type(error)
    if error_type.__module__ == "builtins":
        return error_type.__qualname__
    return f"{error_type.__module__}.{error_type.__qualname__}"
