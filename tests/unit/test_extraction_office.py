"""Word, Excel and PowerPoint extraction: files built in the tests, the shared corpus and the hostile workbook."""

from __future__ import annotations

import io
import zipfile
from datetime import date, datetime
from pathlib import Path

import pytest

from kernel_memory.errors import PermanentError
from kernel_memory.extraction import extract_bytes
from kernel_memory.extraction.excel import format_value
from kernel_memory.models import ExtractedFile


def _texts(extracted: ExtractedFile) -> dict[int, str]:
    return {section.number: section.text for section in extracted.sections}


# ---------------------------------------------------------------- Word


def _docx_bytes(document: object) -> bytes:
    buffer = io.BytesIO()
    document.save(buffer)  # type: ignore[attr-defined]
    return buffer.getvalue()


def _append_element(run: object, tag: str, **attributes: str) -> None:
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    element = OxmlElement(tag)
    for name, value in attributes.items():
        element.set(qn(f"w:{name}"), value)
    run._r.append(element)  # type: ignore[attr-defined]


def test_word_headings_lists_and_table_in_order() -> None:
    import docx

    document = docx.Document()
    document.add_heading("Quarterly report", level=1)
    document.add_paragraph("Revenue grew.")
    document.add_heading("Details", level=2)
    document.add_paragraph("First point", style="List Bullet")
    table = document.add_table(rows=3, cols=3)
    for row, values in zip(table.rows, [["Region", "Q1", "Q2"], ["North", "", "7"], ["South", "4", "5"]]):
        for cell, value in zip(row.cells, values):
            cell.text = value
    document.add_paragraph("After the table.")

    extracted = extract_bytes(_docx_bytes(document), file_name="report.docx")
    assert _texts(extracted) == {
        1: "# Quarterly report\n"
        "Revenue grew.\n"
        "## Details\n"
        "- First point\n"
        "| Region | Q1 | Q2 |\n"
        "| North |  | 7 |\n"
        "| South | 4 | 5 |\n"
        "After the table."
    }


def test_word_merged_cells_show_text_once() -> None:
    import docx

    document = docx.Document()
    table = document.add_table(rows=3, cols=3)
    table.cell(0, 0).merge(table.cell(0, 1)).text = "Wide"
    table.cell(0, 2).text = "C"
    table.cell(1, 0).merge(table.cell(2, 0)).text = "Tall"
    table.cell(1, 1).text = "b"
    table.cell(2, 1).text = "e"

    extracted = extract_bytes(_docx_bytes(document), file_name="merged.docx")
    assert _texts(extracted) == {1: "| Wide |  | C |\n| Tall | b |  |\n|  | e |  |"}


def test_word_explicit_page_breaks_split_sections() -> None:
    import docx
    from docx.enum.text import WD_BREAK

    document = docx.Document()
    document.add_paragraph("Page one")
    document.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
    document.add_paragraph("Page two")

    extracted = extract_bytes(_docx_bytes(document), file_name="breaks.docx")
    assert _texts(extracted) == {1: "Page one", 2: "Page two"}


def test_word_rendered_page_breaks_win_over_explicit_ones() -> None:
    import docx
    from docx.enum.text import WD_BREAK

    document = docx.Document()
    document.add_paragraph("Page one")
    # An explicit break whose page Word has not marked: a marked file is trusted as laid out.
    document.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
    paragraph = document.add_paragraph()
    paragraph.add_run("still one, ")
    _append_element(paragraph.add_run(), "w:lastRenderedPageBreak")
    paragraph.add_run("then two")

    extracted = extract_bytes(_docx_bytes(document), file_name="rendered.docx")
    assert _texts(extracted) == {1: "Page one\nstill one,", 2: "then two"}


def test_word_tracked_deletion_left_out() -> None:
    import docx
    from docx.oxml import OxmlElement

    document = docx.Document()
    paragraph = document.add_paragraph("Kept ")
    deletion = OxmlElement("w:del")
    deleted_run = OxmlElement("w:r")
    deleted_text = OxmlElement("w:delText")
    deleted_text.text = "removed "
    deleted_run.append(deleted_text)
    deletion.append(deleted_run)
    paragraph._p.append(deletion)
    paragraph.add_run("words")

    extracted = extract_bytes(_docx_bytes(document), file_name="tracked.docx")
    assert _texts(extracted) == {1: "Kept words"}


def test_word_damaged_package_fails_permanently() -> None:
    import docx

    data = bytearray(_docx_bytes(docx.Document()))
    with pytest.raises(PermanentError, match="cannot read Word file 'broken.docx'"):
        extract_bytes(bytes(data[: len(data) // 2]), file_name="broken.docx")


@pytest.mark.corpus
def test_word_corpus_pages_follow_word_layout(corpus_dir: Path) -> None:
    data = (corpus_dir / "km-samples" / "mswordfile.docx").read_bytes()
    pages = _texts(extract_bytes(data, file_name="mswordfile.docx"))
    assert sorted(pages) == [1, 2, 3, 4, 5, 6]
    # The long sentence starts on page 1 and ends on page 2, where Word broke it.
    assert "This sentence spans multiple pages 123" in pages[1]
    assert pages[2].startswith("sentence spans multiple pages 123")
    assert pages[2].endswith("this sentence spans multiple pages.")


@pytest.mark.corpus
def test_word_corpus_headings_lists_and_table(corpus_dir: Path) -> None:
    data = (corpus_dir / "km-samples" / "mswordfile.docx").read_bytes()
    text = "\n".join(_texts(extract_bytes(data, file_name="mswordfile.docx")).values())
    assert text.startswith(
        "# Lorem ipsum\n# Lorem ipsum dolor sit amet, consectetur adipiscing elit. Nunc ac faucibus odio."
    )
    assert "\n- Nulla facilisi.\n" in text
    assert "\n## Maecenas mauris lectus, lobortis et purus mattis, blandit dictum tellus.\n" in text
    assert "\n|  | Lorem ipsum | Lorem ipsum | Lorem ipsum |\n" in text
    assert "\n| 1 | In eleifend velit vitae libero sollicitudin euismod. | Lorem |  |\n" in text


@pytest.mark.corpus
def test_word_corpus_story(corpus_dir: Path) -> None:
    data = (corpus_dir / "km-samples" / "story.docx").read_bytes()
    pages = _texts(extract_bytes(data, file_name="story.docx"))
    assert sorted(pages) == [1, 2, 3, 4]
    assert pages[1].startswith("A strange and surprising event transpired upon the celestial manmade globe")
    assert "Gerald Marshall, the Chief Scientist on the team at NASA" in pages[2]


# ---------------------------------------------------------------- Excel


def _xlsx_bytes(workbook: object, *, cached_values: dict[str, str] | None = None) -> bytes:
    """Save `workbook`, then write cached results into formula cells, as Excel does on save.

    openpyxl never stores a formula's result, so `cached_values` maps a formula
    (`B2*2`) to the value to store beside it in the first sheet.
    """
    buffer = io.BytesIO()
    workbook.save(buffer)  # type: ignore[attr-defined]
    if not cached_values:
        return buffer.getvalue()

    patched = io.BytesIO()
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(patched, "w") as target:
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                for formula, value in cached_values.items():
                    old = f"<f>{formula}</f><v></v>".encode()
                    assert old in content, f"formula {formula} not found in the saved sheet"
                    content = content.replace(old, f"<f>{formula}</f><v>{value}</v>".encode())
            target.writestr(info, content)
    return patched.getvalue()


def test_excel_formula_cached_value_or_text() -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Totals"
    sheet.append(["Price", "Double", "Triple"])
    sheet.append([21, "=A2*2", "=A2*3"])

    data = _xlsx_bytes(workbook, cached_values={"A2*2": "42"})
    extracted = extract_bytes(data, file_name="totals.xlsx")
    assert _texts(extracted) == {1: "Worksheet: Totals\n| Price | Double | Triple |\n| 21 | 42 | =A2*3 |"}


def test_excel_values_rendered_without_noise() -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Values"
    sheet.append([0.1 + 0.2, 4.0, True, datetime(2024, 2, 29, 13, 5), date(2024, 1, 2), "a|b"])

    extracted = extract_bytes(_xlsx_bytes(workbook), file_name="values.xlsx")
    assert _texts(extracted) == {
        1: "Worksheet: Values\n| 0.3 | 4 | TRUE | 2024-02-29T13:05:00 | 2024-01-02 | a\\|b |"
    }


def test_excel_blank_rows_and_columns_trimmed() -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Sparse"
    sheet["C3"] = "x"
    sheet["E3"] = "y"
    sheet["D6"] = "z"

    extracted = extract_bytes(_xlsx_bytes(workbook), file_name="sparse.xlsx")
    assert _texts(extracted) == {1: "Worksheet: Sparse\n| x |  | y |\n|  | z |  |"}


def test_excel_sheet_numbers_skip_empty_sheets() -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    workbook.active.title = "Empty"
    workbook.create_sheet("Data")["A1"] = "value"

    extracted = extract_bytes(_xlsx_bytes(workbook), file_name="two.xlsx")
    assert _texts(extracted) == {2: "Worksheet: Data\n| value |"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ""),
        (4, "4"),
        (4.0, "4"),
        (-2.5, "-2.5"),
        (1e20, "1e+20"),
        (1234567.891, "1234567.891"),
        (False, "FALSE"),
        (datetime(2021, 3, 14), "2021-03-14"),
        (datetime(2021, 3, 14, 9, 30, 0, 250000), "2021-03-14T09:30:00.250"),
        ("=SUM(A1:A3)", "=SUM(A1:A3)"),
    ],
)
def test_excel_format_value(value: object, expected: str) -> None:
    assert format_value(value) == expected


def test_excel_hostile_case_exact(cases_dir: Path) -> None:
    data = (cases_dir / "numbers-blanks-formulas.xlsx").read_bytes()
    extracted = extract_bytes(data, file_name="numbers-blanks-formulas.xlsx")
    # 44269 is 2021-03-14 in Excel's 1900 date system; E2 contains =B2*2 without a cached result.
    assert _texts(extracted) == {
        1: "Worksheet: Staff\n"
        "| Name | Salary | City | Id | Double | Joined |\n"
        "| Ann | 2000 |  | 4 | =B2*2 | 2021-03-14 |\n"
        "| Bob | 3100 | Oslo | 5 |  |  |"
    }


def test_excel_damaged_part_data_fails_permanently() -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    workbook.active["A1"] = "x" * 5000
    data = bytearray(_xlsx_bytes(workbook))
    # Damage the compressed bytes of the sheet, leaving the ZIP directory intact.
    start = data.index(b"xl/worksheets/sheet1.xml") + len("xl/worksheets/sheet1.xml")
    data[start + 10 : start + 40] = b"\xff" * 30
    with pytest.raises(PermanentError, match="cannot read Excel file 'damaged.xlsx'"):
        extract_bytes(bytes(data), file_name="damaged.xlsx")


def test_excel_damaged_package_fails_permanently() -> None:
    from openpyxl import Workbook

    data = _xlsx_bytes(Workbook())
    with pytest.raises(PermanentError, match="cannot read Excel file 'cut.xlsx'"):
        extract_bytes(data[:200], file_name="cut.xlsx")


@pytest.mark.corpus
def test_excel_corpus_blank_cells_keep_columns(corpus_dir: Path) -> None:
    data = (corpus_dir / "km-samples" / "file8-data.xlsx").read_bytes()
    extracted = extract_bytes(data, file_name="file8-data.xlsx")
    assert _texts(extracted) == {
        1: "Worksheet: Sheet1\n"
        "| Country | Code | City | Long Name |\n"
        "| U.S.A. |  | Washington | United States of America |\n"
        "| Italia | IT | Rome |  |\n"
        "| Japan | JP | Tokyo |  |"
    }


@pytest.mark.corpus
def test_excel_corpus_numbers_and_dates(corpus_dir: Path) -> None:
    data = (corpus_dir / "km-samples" / "msexcelfile.xlsx").read_bytes()
    sheets = _texts(extract_bytes(data, file_name="msexcelfile.xlsx"))
    rows = sheets[1].split("\n")
    assert sorted(sheets) == [1, 2]
    assert len(rows) == 702
    assert rows[2] == (
        "| Government | Canada | Carretera | None | 1618.5 | 3 | 20 | 32370 | 0 | 32370 | 16185 | 16185 "
        "| 2014-01-01 | 1 | January | 2014 |"
    )
    assert sheets[2].startswith("Worksheet: Sheet2\n| January | Merged cell |\n| February |  |")


# ---------------------------------------------------------------- PowerPoint


def _pptx_bytes(presentation: object) -> bytes:
    buffer = io.BytesIO()
    presentation.save(buffer)  # type: ignore[attr-defined]
    return buffer.getvalue()


def test_powerpoint_slides_tables_notes_and_hidden() -> None:
    from pptx import Presentation
    from pptx.util import Inches

    presentation = Presentation()
    first = presentation.slides.add_slide(presentation.slide_layouts[1])
    first.shapes.title.text = "Roadmap"
    first.placeholders[1].text_frame.text = "Ship search\nShip answers"
    first.notes_slide.notes_text_frame.text = "Mention the beta."

    hidden = presentation.slides.add_slide(presentation.slide_layouts[5])
    hidden.shapes.title.text = "Draft"
    hidden._element.set("show", "0")

    third = presentation.slides.add_slide(presentation.slide_layouts[5])
    third.shapes.title.text = "Numbers"
    table = third.shapes.add_table(2, 3, Inches(1), Inches(2), Inches(6), Inches(1)).table
    for column, value in enumerate(["Team", "", "Score"]):
        table.cell(0, column).text = value
    table.cell(1, 0).merge(table.cell(1, 1))
    table.cell(1, 0).text = "Blue"
    table.cell(1, 2).text = "9"

    extracted = extract_bytes(_pptx_bytes(presentation), file_name="deck.pptx")
    assert _texts(extracted) == {
        1: "# Roadmap\nShip search\nShip answers\nNotes:\nMention the beta.",
        3: "# Numbers\n| Team |  | Score |\n| Blue |  | 9 |",
    }


def test_powerpoint_group_shapes_read() -> None:
    from pptx import Presentation
    from pptx.util import Inches

    presentation = Presentation()
    slide = presentation.slides.add_slide(presentation.slide_layouts[6])
    group = slide.shapes.add_group_shape()
    group.shapes.add_textbox(Inches(1), Inches(1), Inches(3), Inches(1)).text_frame.text = "Inside a group"

    extracted = extract_bytes(_pptx_bytes(presentation), file_name="group.pptx")
    assert _texts(extracted) == {1: "Inside a group"}


@pytest.mark.corpus
def test_powerpoint_corpus_slides(corpus_dir: Path) -> None:
    data = (corpus_dir / "km-samples" / "mspowerpointfile.pptx").read_bytes()
    extracted = extract_bytes(data, file_name="mspowerpointfile.pptx")
    # Slide 3 is hidden in the file, so it is not indexed.
    assert _texts(extracted) == {
        1: "# Sample PowerPoint File\nTest file for Kernel Memory",
        2: "# This is a Sample Slide\n"
        "Here is an outline of bulleted points\n"
        "You can print out PPT files as handouts using the\n"
        "PRINT >\n"
        "PRINT WHAT > HANDOUTS option",
    }
