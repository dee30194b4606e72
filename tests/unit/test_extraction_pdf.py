"""PDF extraction: page numbers on the shared corpus, damaged and encrypted files built in the tests."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from kernel_memory.errors import PermanentError
from kernel_memory.extraction import NO_TEXT_LAYER, extract_bytes, extract_file
from kernel_memory.extraction.pdf import normalize_pdf_text
from kernel_memory.models import ExtractedFile


def make_pdf(pages: list[str]) -> bytes:
    """Build a PDF with one line of Helvetica text per page (an empty string gives a page without text)."""
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"",  # the page tree, filled in once the page object numbers are known
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    page_numbers = []
    for text in pages:
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        content = f"BT /F1 12 Tf 72 720 Td ({escaped}) Tj ET".encode("cp1252") if text else b""
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content))
        content_number = len(objects)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
            b"/Resources << /Font << /F1 3 0 R >> >> >>" % content_number
        )
        page_numbers.append(len(objects))
    kids = b" ".join(b"%d 0 R" % number for number in page_numbers)
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(page_numbers))

    output = io.BytesIO()
    output.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(output.tell())
        output.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
    xref_offset = output.tell()
    output.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        output.write(b"%010d 00000 n \n" % offset)
    output.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref_offset)
    )
    return output.getvalue()


def encrypt_pdf(data: bytes, *, user_password: str) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm="AES-128")
    output = io.BytesIO()
    writer.write(output)
    return output.getvalue()


def _section_texts(extracted: ExtractedFile) -> dict[int, str]:
    return {section.number: section.text for section in extracted.sections}


# ---------------------------------------------------------------- built PDFs


def test_pdf_one_section_per_page() -> None:
    extracted = extract_bytes(make_pdf(["First page", "Second page"]), file_name="two.pdf")
    assert _section_texts(extracted) == {1: "First page", 2: "Second page"}


def test_pdf_blank_page_keeps_later_numbers() -> None:
    extracted = extract_bytes(make_pdf(["Cover", "", "Third"]), file_name="gap.pdf")
    assert _section_texts(extracted) == {1: "Cover", 3: "Third"}


def test_pdf_without_text_layer_is_skipped() -> None:
    extracted = extract_bytes(make_pdf(["", ""]), file_name="scan.pdf")
    assert extracted.is_empty
    assert extracted.skipped_reason == NO_TEXT_LAYER


class FakeOcr:
    """OCR engine double that records its calls and returns fixed text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.calls: list[str] = []

    async def read_image(self, data: bytes, *, mime_type: str) -> str:
        self.calls.append(mime_type)
        return self.text


async def test_pdf_without_text_layer_goes_to_ocr() -> None:
    ocr = FakeOcr("scanned words")
    extracted = await extract_file(make_pdf([""]), file_name="scan.pdf", ocr=ocr)
    assert ocr.calls == ["application/pdf"]
    assert _section_texts(extracted) == {1: "scanned words"}


async def test_pdf_with_text_skips_ocr() -> None:
    ocr = FakeOcr("unused")
    extracted = await extract_file(make_pdf(["Typed words"]), file_name="typed.pdf", ocr=ocr)
    assert ocr.calls == []
    assert _section_texts(extracted) == {1: "Typed words"}


def test_pdf_encrypted_with_empty_password() -> None:
    data = encrypt_pdf(make_pdf(["Secret but readable"]), user_password="")
    extracted = extract_bytes(data, file_name="locked.pdf")
    assert _section_texts(extracted) == {1: "Secret but readable"}


def test_pdf_encrypted_with_password_fails() -> None:
    data = encrypt_pdf(make_pdf(["Secret"]), user_password="hunter2")
    with pytest.raises(PermanentError, match="protected by a password"):
        extract_bytes(data, file_name="locked.pdf")


def test_pdf_truncated_fails_permanently() -> None:
    data = make_pdf(["Some text"])
    with pytest.raises(PermanentError, match="cannot read PDF file 'cut.pdf'"):
        extract_bytes(data[:30], file_name="cut.pdf")


def test_pdf_corrupt_case_fails_permanently(cases_dir: Path) -> None:
    data = (cases_dir / "corrupt.pdf").read_bytes()
    with pytest.raises(PermanentError, match="cannot read PDF file 'corrupt.pdf'") as raised:
        extract_bytes(data, file_name="corrupt.pdf")
    assert raised.value.transient is False


def test_normalize_pdf_text_joins_vertical_columns() -> None:
    # pypdf reads vertical text one character per line, with a space after each column's last one.
    assert normalize_pdf_text("日\n本\n語 \n話\nす\nよ \n") == "日本語\n話すよ"


def test_normalize_pdf_text_keeps_short_cjk_lines() -> None:
    assert normalize_pdf_text("序\n章\nText") == "序\n章\nText"


def test_normalize_pdf_text_cleans_extraction_noise() -> None:
    raw = "e\ufb03cient \ufb01le\x00s  \r\nline two\t \n\n\n\n\nlast\x0cpage"
    assert normalize_pdf_text(raw) == "efficient files\nline two\n\nlast\npage"


# ---------------------------------------------------------------- symbolic TrueType fonts (Ghostscript output)


@pytest.fixture(scope="module")
def nasa_news(corpus_dir: Path) -> dict[int, str]:
    data = (corpus_dir / "km-samples" / "file5-NASA-news.pdf").read_bytes()
    return _section_texts(extract_bytes(data, file_name="file5-NASA-news.pdf"))


@pytest.mark.corpus
def test_pdf_symbolic_font_ligatures_read(nasa_news: dict[int, str]) -> None:
    # The font draws "fi" as one glyph at code 0xDE, which reads "Þ" without the font's own cmap.
    assert (
        "Teams are currently conducting the first in a series of tests in the Pacific Ocean" in nasa_news[2]
    )


@pytest.mark.corpus
def test_pdf_symbolic_font_quotes_read(nasa_news: dict[int, str]) -> None:
    assert "the new test version of NASA\u2019s Orion spacecraft" in nasa_news[1]


@pytest.mark.corpus
def test_pdf_symbolic_font_leaves_no_latin1_guesses(nasa_news: dict[int, str]) -> None:
    text = "".join(nasa_news.values())
    assert [char for char in "\u00de\u00d5\u00d2\u00d3" if char in text] == []


@pytest.mark.corpus
def test_pdf_symbolic_font_bullets_read(corpus_dir: Path) -> None:
    data = (corpus_dir / "km-samples" / "file4-KM-Readme.pdf").read_bytes()
    pages = _section_texts(extract_bytes(data, file_name="file4-KM-Readme.pdf"))
    assert "\u2022 JPG/PNG/TIFF Images with text via OCR" in pages[3]


# ---------------------------------------------------------------- Contoso corpus


@pytest.fixture(scope="module")
def contoso_pdfs(corpus_dir: Path) -> dict[str, dict[int, str]]:
    """Section texts of every Contoso PDF, extracted once for the module (the Northwind PDFs take seconds)."""
    folder = corpus_dir / "contoso"
    return {
        path.name: _section_texts(extract_bytes(path.read_bytes(), file_name=path.name))
        for path in sorted(folder.glob("*.pdf"))
    }


def _pages_with(pages: dict[int, str], phrase: str) -> list[int]:
    return [number for number, text in pages.items() if phrase in " ".join(text.split())]


@pytest.mark.corpus
@pytest.mark.parametrize(
    ("file_name", "page_count"),
    [
        ("Benefit_Options.pdf", 4),
        ("Northwind_Health_Plus_Benefits_Details.pdf", 109),
        ("Northwind_Standard_Benefits_Details.pdf", 104),
        ("PerksPlus.pdf", 4),
        ("employee_handbook.pdf", 11),
        ("role_library.pdf", 31),
    ],
)
def test_pdf_contoso_every_page_has_text(
    contoso_pdfs: dict[str, dict[int, str]], file_name: str, page_count: int
) -> None:
    assert sorted(contoso_pdfs[file_name]) == list(range(1, page_count + 1))


@pytest.mark.corpus
@pytest.mark.parametrize(
    ("file_name", "phrase", "pages"),
    [
        # Pages cited by the Contoso evaluation questions, checked against the PDF.
        ("Northwind_Health_Plus_Benefits_Details.pdf", "protected from balance billing", [7]),
        (
            "Northwind_Health_Plus_Benefits_Details.pdf",
            "To coordinate benefits with your other employer plan",
            [77],
        ),
        (
            "Northwind_Health_Plus_Benefits_Details.pdf",
            "The Right of Recovery provision in Northwind's Health Plus plan",
            [102],
        ),
        # The evaluation answer cites page 10 for this sentence, but the PDF has it on page 11.
        (
            "Northwind_Health_Plus_Benefits_Details.pdf",
            "The copayment for primary care visits is typically around $20",
            [11],
        ),
        (
            "Northwind_Standard_Benefits_Details.pdf",
            "intentionally false or misleading statements about their plans",
            [91],
        ),
        ("employee_handbook.pdf", "developed a comprehensive Workplace Violence Prevention Program", [6]),
        ("PerksPlus.pdf", "expense up to $1000 for fitness-related", [3]),
        ("Benefit_Options.pdf", "two comprehensive health insurance plans through Northwind Health", [3]),
        ("role_library.pdf", "Job Title: Chief Operating Officer", [4]),
    ],
)
def test_pdf_contoso_phrase_on_page(
    contoso_pdfs: dict[str, dict[int, str]], file_name: str, phrase: str, pages: list[int]
) -> None:
    assert _pages_with(contoso_pdfs[file_name], phrase) == pages


@pytest.mark.corpus
def test_pdf_contoso_cited_pages_exist(contoso_pdfs: dict[str, dict[int, str]], corpus_dir: Path) -> None:
    """Every `[file.pdf#page=N]` citation in the evaluation questions names a page with text."""
    questions = (corpus_dir / "contoso" / "questions-dev.jsonl").read_text(encoding="utf-8")
    citations = set(re.findall(r"\[([^\]#]+\.pdf)#page=(\d+)\]", questions))
    assert citations
    missing = [(name, int(page)) for name, page in citations if int(page) not in contoso_pdfs[name]]
    assert missing == []


# ---------------------------------------------------------------- multilingual corpus

MULTILINGUAL_PHRASES = {
    "ar_Tribute to Michael Hart.pdf": "The Project Gutenberg eBook of Tribute to Michael Hart",
    "en_An Occurrence at Owl Creek Bridge.pdf": "A man stood upon a railroad bridge in northern Alabama",
    "ja_惡魔.pdf": "The Project Gutenberg eBook of 惡魔",
    "ko_도시로 간 쥐.pdf": "마우스는 언제나 큰 도시에 가보고 싶었다",
    "zh_You Xue Qiong Lin (幼學瓊林).pdf": "The Project Gutenberg eBook of 幼學瓊林",
    "Financial Market Analysis Report 2023.pdf": "Financial Market Analysis Report 2023",
    "Simple Table.pdf": "Header 1",
    "Simple Figure.pdf": "This text is before the figure and NOT part of it.",
}


@pytest.fixture(scope="module")
def multilingual_pdfs(corpus_dir: Path) -> dict[str, ExtractedFile]:
    folder = corpus_dir / "multilingual"
    return {
        path.name: extract_bytes(path.read_bytes(), file_name=path.name)
        for path in sorted(folder.glob("*.pdf"))
    }


@pytest.mark.corpus
def test_pdf_multilingual_without_replacement_characters(multilingual_pdfs: dict[str, ExtractedFile]) -> None:
    damaged = [
        (name, section.number)
        for name, extracted in multilingual_pdfs.items()
        for section in extracted.sections
        if "\ufffd" in section.text
    ]
    assert len(multilingual_pdfs) == 9
    assert damaged == []


@pytest.mark.corpus
@pytest.mark.parametrize(("file_name", "phrase"), sorted(MULTILINGUAL_PHRASES.items()))
def test_pdf_multilingual_key_phrase(
    multilingual_pdfs: dict[str, ExtractedFile], file_name: str, phrase: str
) -> None:
    text = " ".join(section.text for section in multilingual_pdfs[file_name].sections)
    assert phrase in " ".join(text.split())


@pytest.mark.corpus
def test_pdf_multilingual_vertical_japanese(multilingual_pdfs: dict[str, ExtractedFile]) -> None:
    extracted = multilingual_pdfs["ja_RTL_TopToBottom_Test.pdf"]
    assert _section_texts(extracted) == {
        1: "田中さんの猫はかわいいですね\n日本語が話しません\n角ばかり\n波風あらき\n沖なれど\nほのかに\n見ゆる\nいさり火の影"
    }


@pytest.mark.corpus
def test_pdf_multilingual_korean_first_page(multilingual_pdfs: dict[str, ExtractedFile]) -> None:
    first = multilingual_pdfs["ko_도시로 간 쥐.pdf"].sections[0]
    assert first.number == 1
    assert first.text.startswith("도시로 간 쥐\n마우스는 언제나 큰 도시에 가보고 싶었다.")


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text).translate(str.maketrans("\u201c\u201d\u2018\u2019", "\"\"''"))


@pytest.mark.corpus
def test_pdf_multilingual_pages_match_reference(
    multilingual_pdfs: dict[str, ExtractedFile], corpus_dir: Path
) -> None:
    """Most long lines of each reference page (0-based `page_num`) appear on the same page here.

    The reference text comes from another extractor, with straight quotes
    and other spacing: whitespace and quote shapes are ignored, and a few
    lines may still miss.
    """
    reference = json.loads(
        (corpus_dir / "multilingual" / "pages_with_just_text.json").read_text(encoding="utf-8")
    )
    sections = {
        section.number: section.text
        for section in multilingual_pdfs["en_An Occurrence at Owl Creek Bridge.pdf"].sections
    }
    squeezed = {number: _squeeze(text) for number, text in sections.items()}
    for entry in reference:
        text = re.sub(r"<!--.*?-->", "", entry["text"])
        lines = [_squeeze(line) for line in text.split("\n") if len(line.strip()) > 40]
        found = sum(1 for line in lines if line in squeezed.get(entry["page_num"] + 1, ""))
        assert found >= 0.8 * len(lines), (
            f"reference page_num {entry['page_num']}: {found} of {len(lines)} lines"
        )
