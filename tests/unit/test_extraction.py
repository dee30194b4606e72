"""Extraction through the public API: hostile cases, text formats, images and OCR, the whole corpus."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from kernel_memory.errors import EmptyFileError, UnsupportedContentError
from kernel_memory.extraction import (
    OCR_NOT_CONFIGURED,
    SUPPORTED_MIME_TYPES,
    extract_bytes,
    extract_file,
    get_decoder,
    mime,
)
from kernel_memory.extraction.extractor import OCR_MIME_TYPES
from kernel_memory.models import ExtractedFile


def _texts(extracted: ExtractedFile) -> dict[int, str]:
    return {section.number: section.text for section in extracted.sections}


class FakeOcr:
    """OCR engine double that records its calls and returns fixed text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.calls: list[tuple[int, str]] = []

    async def read_image(self, data: bytes, *, mime_type: str) -> str:
        self.calls.append((len(data), mime_type))
        return self.text


# ---------------------------------------------------------------- hostile cases


def test_extract_zero_bytes_case(cases_dir: Path) -> None:
    data = (cases_dir / "zero-bytes.txt").read_bytes()
    with pytest.raises(EmptyFileError, match=r"^file is empty: zero-bytes.txt$"):
        extract_bytes(data, file_name="zero-bytes.txt")


async def test_extract_file_zero_bytes_rejected() -> None:
    with pytest.raises(EmptyFileError, match="file is empty: empty.pdf"):
        await extract_file(b"", file_name="empty.pdf")


def test_extract_whitespace_only_case_is_empty(cases_dir: Path) -> None:
    data = (cases_dir / "whitespace-only.txt").read_bytes()
    extracted = extract_bytes(data, file_name="whitespace-only.txt")
    assert extracted.is_empty
    assert extracted.sections == []
    assert extracted.skipped_reason is None


def test_extract_headings_only_case_kept_as_written(cases_dir: Path) -> None:
    extracted = extract_bytes((cases_dir / "headings-only.md").read_bytes(), file_name="headings-only.md")
    assert extracted.mime_type == mime.MARKDOWN
    assert _texts(extracted) == {1: "# A\n\n# B\n"}


def test_extract_special_tokens_case_verbatim(cases_dir: Path) -> None:
    data = (cases_dir / "special-tokens.txt").read_bytes()
    extracted = extract_bytes(data, file_name="special-tokens.txt")
    assert _texts(extracted) == {1: data.decode("utf-8")}
    assert "<|endoftext|>" in extracted.sections[0].text


def test_extract_token_dense_case_exact(cases_dir: Path) -> None:
    data = (cases_dir / "token-dense.txt").read_bytes()
    extracted = extract_bytes(data, file_name="token-dense.txt")
    assert _texts(extracted) == {1: data.decode("utf-8")}


def test_extract_cjk_case_exact(cases_dir: Path) -> None:
    data = (cases_dir / "cjk-no-spaces.md").read_bytes()
    extracted = extract_bytes(data, file_name="cjk-no-spaces.md")
    assert "\ufffd" not in extracted.sections[0].text
    assert _texts(extracted) == {1: data.decode("utf-8")}


def test_extract_no_separators_case(cases_dir: Path) -> None:
    extracted = extract_bytes((cases_dir / "no-separators.txt").read_bytes(), file_name="no-separators.txt")
    assert _texts(extracted) == {1: "a" * 300_000}


def test_extract_html_noise_case(cases_dir: Path) -> None:
    extracted = extract_bytes((cases_dir / "html-noise.html").read_bytes(), file_name="html-noise.html")
    assert _texts(extracted) == {1: "Home\nOpening hours 9\u201317\nClosed on Sundays"}


def test_extract_unsupported_case(cases_dir: Path) -> None:
    data = (cases_dir / "unsupported.xyz").read_bytes()
    with pytest.raises(UnsupportedContentError, match="unsupported file type 'application/octet-stream'"):
        extract_bytes(data, file_name="unsupported.xyz")


def test_extract_legacy_doc_case(cases_dir: Path) -> None:
    data = (cases_dir / "legacy.doc").read_bytes()
    with pytest.raises(
        UnsupportedContentError, match="unsupported file type 'application/msword'.*save it as .docx"
    ):
        extract_bytes(data, file_name="legacy.doc")


def test_extract_password_protected_office_file() -> None:
    data = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + "EncryptedPackage".encode("utf-16-le") + b"\x00" * 64
    with pytest.raises(UnsupportedContentError, match="'budget.xlsx' is a password-protected Office file"):
        extract_bytes(data, file_name="budget.xlsx")


async def test_extract_file_unsupported_case(cases_dir: Path) -> None:
    data = (cases_dir / "unsupported.xyz").read_bytes()
    with pytest.raises(UnsupportedContentError, match="unsupported file type"):
        await extract_file(data, file_name="unsupported.xyz")


# ---------------------------------------------------------------- text formats


def test_extract_plain_text_newlines_unified() -> None:
    extracted = extract_bytes(b"one\r\ntwo\rthree\n", file_name="lines.txt")
    assert _texts(extracted) == {1: "one\ntwo\nthree\n"}


def test_extract_plain_text_cp1252() -> None:
    extracted = extract_bytes("Gr\u00fc\u00dfe \u2013 5 \u20ac".encode("cp1252"), file_name="legacy.txt")
    assert _texts(extracted) == {1: "Gr\u00fc\u00dfe \u2013 5 \u20ac"}


def test_extract_plain_text_utf16_with_bom() -> None:
    extracted = extract_bytes("caf\u00e9\r\nna\u00efve".encode("utf-16"), file_name="notes.txt")
    assert _texts(extracted) == {1: "caf\u00e9\nna\u00efve"}


def test_extract_json_pretty_with_real_characters() -> None:
    extracted = extract_bytes(b'{"city":"K\\u00f6ln","tags":["a","b"]}', file_name="data.json")
    assert _texts(extracted) == {1: '{\n  "city": "K\u00f6ln",\n  "tags": [\n    "a",\n    "b"\n  ]\n}'}


def test_extract_json_with_comments_kept_as_written() -> None:
    data = b'{\n  // the log level\n  "level": "Warning"\n}'
    extracted = extract_bytes(data, file_name="appsettings.json")
    assert _texts(extracted) == {1: data.decode()}


def test_extract_csv_blank_fields_stay() -> None:
    data = b'name,city,id\r\nAnn,,4\r\n"Smith, Bob",Oslo,5\r\n\r\n'
    extracted = extract_bytes(data, file_name="people.csv")
    assert _texts(extracted) == {1: "| name | city | id |\n| Ann |  | 4 |\n| Smith, Bob | Oslo | 5 |"}


def test_extract_csv_semicolon_delimiter() -> None:
    extracted = extract_bytes(b"a;b;c\n1;;3\n", file_name="export.csv")
    assert _texts(extracted) == {1: "| a | b | c |\n| 1 |  | 3 |"}


def test_extract_tsv() -> None:
    extracted = extract_bytes(b"a\tb\n1\t2\n", file_name="export.tsv")
    assert _texts(extracted) == {1: "| a | b |\n| 1 | 2 |"}


def test_extract_html_blocks_headings_lists_tables() -> None:
    html = (
        b"<html><head><title>Guide</title><style>p{}</style></head><body>"
        b"<h1>Intro</h1><p>Some <b>bold</b>\n   text.</p>"
        b"<ul><li>one</li><li><p>two</p></li></ul>"
        b"<table><tr><th>A</th><th>B</th></tr><tr><td></td><td>2</td></tr></table>"
        b"<pre>  x = 1\n  y = 2</pre><div hidden>secret</div><template>tpl</template>"
        b"<noscript>enable js</noscript><svg><text>icon</text></svg>last<br>line"
        b"</body></html>"
    )
    extracted = extract_bytes(html, file_name="guide.html")
    assert _texts(extracted) == {
        1: "Guide\n# Intro\nSome bold text.\n- one\n- two\n| A | B |\n|  | 2 |\n  x = 1\n  y = 2\nlast\nline"
    }


def test_extract_html_honours_meta_charset() -> None:
    html = '<html><head><meta charset="windows-1252"></head><body><p>Caf\u00e9 \u2013 bar</p></body></html>'
    extracted = extract_bytes(html.encode("cp1252"), file_name="page.html")
    assert _texts(extracted) == {1: "Caf\u00e9 \u2013 bar"}


def test_extract_html_deep_nesting() -> None:
    html = b"<html><body>" + b"<div>" * 5000 + b"deep" + b"</div>" * 5000 + b"</body></html>"
    assert _texts(extract_bytes(html, file_name="deep.html")) == {1: "deep"}


# ---------------------------------------------------------------- detection through the API


def test_extract_wrong_extension_uses_content() -> None:
    extracted = extract_bytes(b"<html><body><p>Hello</p></body></html>", file_name="page.pdf")
    assert extracted.mime_type == mime.HTML
    assert _texts(extracted) == {1: "Hello"}


def test_extract_declared_type_is_only_a_hint() -> None:
    extracted = extract_bytes(b'{"a": 1}', file_name="blob", mime_type="image/png")
    assert extracted.mime_type == mime.JSON


@pytest.mark.corpus
def test_extract_docx_without_extension(corpus_dir: Path) -> None:
    data = (corpus_dir / "km-samples" / "story.docx").read_bytes()
    extracted = extract_bytes(data, file_name="story", mime_type="application/octet-stream")
    assert extracted.mime_type == mime.DOCX
    assert len(extracted.sections) == 4


# ---------------------------------------------------------------- images and OCR

PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def test_extract_image_without_ocr_is_skipped() -> None:
    extracted = await extract_file(PNG_BYTES, file_name="scan.png")
    assert extracted.mime_type == mime.PNG
    assert extracted.sections == []
    assert extracted.skipped_reason == OCR_NOT_CONFIGURED


async def test_extract_image_with_ocr() -> None:
    ocr = FakeOcr("Total: 42")
    extracted = await extract_file(PNG_BYTES, file_name="receipt.png", ocr=ocr)
    assert ocr.calls == [(len(PNG_BYTES), mime.PNG)]
    assert _texts(extracted) == {1: "Total: 42"}


async def test_extract_image_ocr_blank_result_is_empty() -> None:
    extracted = await extract_file(PNG_BYTES, file_name="blank.png", ocr=FakeOcr("  \n"))
    assert extracted.is_empty


def test_extract_bytes_image_is_skipped() -> None:
    extracted = extract_bytes(PNG_BYTES, file_name="scan.png")
    assert extracted.skipped_reason == OCR_NOT_CONFIGURED


@pytest.mark.corpus
async def test_extract_corpus_jpeg_without_ocr(corpus_dir: Path) -> None:
    data = (corpus_dir / "km-samples" / "file6-ANWC-image.jpg").read_bytes()
    extracted = await extract_file(data, file_name="file6-ANWC-image.jpg")
    assert extracted.mime_type == mime.JPEG
    assert extracted.sections == []
    assert extracted.skipped_reason == "OCR is not configured"


async def test_extract_file_decodes_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    decoder = get_decoder(mime.PLAIN_TEXT)
    threads: list[threading.Thread] = []
    original = type(decoder).decode

    def recording_decode(self: object, data: bytes, *, file_name: str) -> ExtractedFile:
        threads.append(threading.current_thread())
        return original(self, data, file_name=file_name)  # type: ignore[arg-type]

    monkeypatch.setattr(type(decoder), "decode", recording_decode)
    await extract_file(b"hello", file_name="a.txt")
    assert threads
    assert threads[0] is not threading.current_thread()


async def test_extract_file_runs_files_concurrently() -> None:
    results = await asyncio.gather(
        *(extract_file(f"file {n}".encode(), file_name=f"{n}.txt") for n in range(5))
    )
    assert [_texts(result) for result in results] == [{1: f"file {n}"} for n in range(5)]


# ---------------------------------------------------------------- registry


@pytest.mark.parametrize("mime_type", sorted(SUPPORTED_MIME_TYPES - OCR_MIME_TYPES))
def test_decoder_claims_its_mime_type(mime_type: str) -> None:
    assert mime_type in get_decoder(mime_type).mime_types


# ---------------------------------------------------------------- whole corpus

KM_SAMPLES_PHRASES = {
    "file1-Wikipedia-Carbon.txt": "Carbon (from Latin carbo 'coal') is a chemical element with the symbol C",
    "file1.pdf": "Semantic Kernel (SK) is a lightweight SDK enabling integration of AI Large Language",
    "file2-Wikipedia-Moon.txt": "The Moon is Earth's only natural satellite.",
    "file3-lorem-ipsum.docx": "# Lorem ipsum dolor sit amet, consectetur adipiscing elit. Nunc ac faucibus odio.",
    "file4-KM-Readme.pdf": "Kernel Memory (KM) is a multi-modal AI Service specialized in the efficient indexing of datasets",
    "file5-NASA-news.pdf": "NASA Invites Media to See Recovery Craft for",
    "file7-submarine.html": "# Apache Submarine (a project managed by the Apache Submarine Committee)",
    "file8-data.xlsx": "| U.S.A. |  | Washington | United States of America |",
    "file9-settings.json": '"Default": "Warning"',
    "msexcelfile.xlsx": "| Segment | Country | Product | Discount Band | Units Sold |",
    "mspowerpointfile.pptx": "# This is a Sample Slide",
    "mswordfile.docx": "This sentence spans multiple pages 123",
    "story.docx": "Rubio's Radiant Mold",
}

CONTOSO_PHRASES = {
    "Benefit_Options.pdf": "Contoso Electronics\nPlan and Benefit Packages",
    "Contoso_Electronics_Company_Overview.md": "Contoso Electronics",
    "Northwind_Health_Plus_Benefits_Details.pdf": "Northwind Health Plus",
    "Northwind_Standard_Benefits_Details.pdf": "Northwind Standard",
    "PerksPlus.pdf": "PerksPlus Health and Wellness",
    "employee_handbook.pdf": "Contoso Electronics\nEmployee Handbook",
    "questions-dev.jsonl": '"question": "what is copay for Northwind Health Plus?"',
    "role_library.pdf": "Roles Descriptions at\nContoso Electronics",
}


def _extract_folder(folder: Path) -> dict[str, ExtractedFile]:
    return {
        path.name: extract_bytes(path.read_bytes(), file_name=path.name) for path in sorted(folder.iterdir())
    }


@pytest.mark.corpus
def test_extract_every_km_sample(corpus_dir: Path) -> None:
    extracted = _extract_folder(corpus_dir / "km-samples")
    assert sorted(extracted) == sorted([*KM_SAMPLES_PHRASES, "file6-ANWC-image.jpg"])
    missing = [name for name, phrase in KM_SAMPLES_PHRASES.items() if not _contains(extracted[name], phrase)]
    assert missing == []


@pytest.mark.corpus
@pytest.mark.slow
def test_extract_every_contoso_file(corpus_dir: Path) -> None:
    extracted = _extract_folder(corpus_dir / "contoso")
    assert sorted(extracted) == sorted(CONTOSO_PHRASES)
    missing = [name for name, phrase in CONTOSO_PHRASES.items() if not _contains(extracted[name], phrase)]
    assert missing == []


@pytest.mark.corpus
def test_extract_contoso_markdown_unchanged(corpus_dir: Path) -> None:
    path = corpus_dir / "contoso" / "Contoso_Electronics_Company_Overview.md"
    extracted = extract_bytes(path.read_bytes(), file_name=path.name)
    assert _texts(extracted) == {1: path.read_text(encoding="utf-8").replace("\r\n", "\n")}


@pytest.mark.corpus
def test_extract_corpus_html_drops_scripts(corpus_dir: Path) -> None:
    data = (corpus_dir / "km-samples" / "file7-submarine.html").read_bytes()
    text = extract_bytes(data, file_name="file7-submarine.html").sections[0].text
    assert text.startswith("Apache Project Information\n# Project Information\n- Home\n")
    assert "preloadEverything" not in text
    assert "jquery" not in text


def _contains(extracted: ExtractedFile, phrase: str) -> bool:
    return any(phrase in section.text for section in extracted.sections)
