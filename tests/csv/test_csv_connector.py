"""The CSV connector on its own: files as HRIS and spreadsheets really write them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from coachbridge.connectors import ConnectorContext
from coachbridge.csvcells import to_csv
from coachbridge.domain import PersonStatus
from coachbridge.errors import InputDataError
from coachbridge_csv.config import CsvConfig
from coachbridge_csv.connector import CsvConnector
from pydantic import ValidationError

from .csv_helpers import HEADER, company, person, write_csv


def connector(tmp_path: Path, **settings: object) -> CsvConnector:
    settings.setdefault("people", "people.csv")
    config = CsvConfig.model_validate({"plugin": "csv", **settings})
    return CsvConnector(config, ConnectorContext(name="hr", base_dir=tmp_path))


def people(tmp_path: Path, **settings: object):  # type: ignore[no-untyped-def]
    return connector(tmp_path, **settings).read_people(None, full=True)


def test_csv_reads_a_plain_export(tmp_path: Path) -> None:
    write_csv(tmp_path / "people.csv", company(5))
    batch = people(tmp_path)
    assert batch.full is True
    assert batch.cursor and batch.cursor.startswith("sha256:")
    assert [r.external_id for r in batch.records] == ["1", "2", "3", "4", "5"]
    boss, second = batch.records[0], batch.records[1]
    assert boss.manager_external_id is None and second.manager_external_id == "1"
    assert second.level == 7 and second.skills == ["python", "sql"]
    assert second.hire_date == date(2020, 1, 15)
    assert second.status is PersonStatus.ACTIVE and second.hris_status == "Active"
    assert [r.source_line for r in batch.records] == [2, 3, 4, 5, 6]


def test_csv_bom_semicolons_quotes_newlines_and_non_ascii(tmp_path: Path) -> None:
    rows = [
        person("1", first_name="Zoë", last_name="Müller-Łukasiewicz", job_title="CEO; founder"),
        person("2", "1", first_name="Ana", last_name="O'Brien", job_title="Lead,\nPlatform"),
        person("3", "1", first_name="Jürgen", last_name='Said "JJ" Øster'),
    ]
    path = write_csv(tmp_path / "people.csv", rows, delimiter=";", encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    records = people(tmp_path).records
    assert records[0].name == "Zoë Müller-Łukasiewicz"
    assert records[0].job_title == "CEO; founder"
    assert records[1].job_title == "Lead,\nPlatform"
    assert records[2].last_name == 'Said "JJ" Øster'
    # the multi-line record starts on line 3, so the next one is on line 5
    assert [r.source_line for r in records] == [2, 3, 5]


def test_csv_cp1252_excel_export_and_tabs(tmp_path: Path) -> None:
    rows = [person("1", first_name="José", last_name="Ñúñez"), person("2", "1", last_name="Šta€")]
    write_csv(tmp_path / "people.csv", rows, delimiter="\t", encoding="cp1252")
    assert "é".encode("cp1252") in (tmp_path / "people.csv").read_bytes()
    records = people(tmp_path).records
    assert records[0].name == "José Ñúñez"
    assert records[1].last_name == "Šta€"


def test_csv_utf16_unicode_text_export(tmp_path: Path) -> None:
    write_csv(
        tmp_path / "people.csv", [person("1", first_name="Zoë")], delimiter="\t", encoding="utf-16"
    )
    assert people(tmp_path).records[0].first_name == "Zoë"


def test_csv_explicit_encoding_and_delimiter(tmp_path: Path) -> None:
    write_csv(
        tmp_path / "people.csv", [person("1", first_name="Zoë")], delimiter="|", encoding="cp1252"
    )
    records = people(tmp_path, encoding="cp1252", delimiter="|").records
    assert records[0].first_name == "Zoë"


def test_csv_column_mapping_and_statuses(tmp_path: Path) -> None:
    header = (
        "Employee #",
        "Given name",
        "Surname",
        "Work Email",
        "Reports To",
        "Employment Status",
        "Job Level",
        "Terminated On",
        "Known as",
        "Division",
        "Skills",
    )
    rows = [
        {
            "Employee #": "E1",
            "Given name": "Kim",
            "Surname": "Lee",
            "Work Email": "KIM@EXAMPLE.COM",
            "Employment Status": "Active",
            "Job Level": "L8",
            "Known as": "Kimmy",
            "Division": "Tech",
            "Skills": "go|rust",
        },
        {
            "Employee #": "E2",
            "Given name": "Sam",
            "Surname": "Roe",
            "Reports To": "E1",
            "Employment Status": "Terminated",
            "Terminated On": "2026-03-31",
            "Job Level": "3 Associate",
        },
        {
            "Employee #": "E3",
            "Given name": "Ida",
            "Surname": "Wu",
            "Reports To": "E1",
            "Employment Status": "on leave",
        },
    ]
    write_csv(tmp_path / "people.csv", rows, header)
    columns = {
        "id": "Employee #",
        "first_name": "Given name",
        "last_name": "Surname",
        "email": "Work Email",
        "manager_id": "Reports To",
        "status": "Employment Status",
        "level": "Job Level",
        "termination_date": "Terminated On",
        "preferred_name": "Known as",
        "division": "Division",
        "skills": "Skills",
    }
    kim, sam, ida = people(tmp_path, columns=columns).records
    assert kim.name == "Kimmy Lee" and kim.level == 8 and kim.division == "Tech"
    assert kim.email == "KIM@EXAMPLE.COM" and kim.skills == ["go", "rust"]
    assert sam.status is PersonStatus.INACTIVE and sam.hris_status == "Terminated"
    assert sam.termination_date == date(2026, 3, 31) and sam.level == 3
    assert ida.status is PersonStatus.ACTIVE and ida.hris_status == "on leave"


def test_csv_past_termination_date_without_status_means_left(tmp_path: Path) -> None:
    header = ("id", "first_name", "last_name", "termination_date")
    rows = [
        {"id": "1", "first_name": "A", "last_name": "B", "termination_date": "2020-01-01"},
        {"id": "2", "first_name": "C", "last_name": "D", "termination_date": "2999-01-01"},
        {"id": "3", "first_name": "E", "last_name": "F"},
    ]
    write_csv(tmp_path / "people.csv", rows, header)
    gone, leaving_later, staying = people(tmp_path).records
    assert gone.status is PersonStatus.INACTIVE
    assert leaving_later.status is PersonStatus.ACTIVE
    assert staying.status is PersonStatus.ACTIVE and staying.email is None


def test_csv_only_columns_in_the_file_are_set(tmp_path: Path) -> None:
    write_csv(tmp_path / "people.csv", [person("1")], ("id", "first_name", "last_name", "email"))
    record = people(tmp_path).records[0]
    assert "skills" not in record.model_fields_set
    assert {"external_id", "email"} <= record.model_fields_set


def test_csv_formula_escaped_cells_round_trip(tmp_path: Path) -> None:
    original = [person("1", job_title='=HYPERLINK("x")', last_name="-Dash", skills="@risk;+plus")]
    exported = to_csv(original, HEADER)  # what `--format csv` writes
    assert "'=HYPERLINK" in exported and "'-Dash" in exported
    (tmp_path / "people.csv").write_text(exported, encoding="utf-8")
    record = people(tmp_path).records[0]
    assert record.job_title == '=HYPERLINK("x")'
    assert record.last_name == "-Dash"
    assert record.skills == ["@risk", "+plus"]


def test_csv_reviews_and_goals(tmp_path: Path) -> None:
    write_csv(tmp_path / "people.csv", company(3))
    write_csv(
        tmp_path / "reviews.csv",
        [
            {"employee_id": "1", "cycle": "2025-H2", "rating": "2", "completed_at": "2026-01-10"},
            {
                "employee_id": "2",
                "cycle": "2025-H2",
                "rating": "3,5",
                "rating_scale_max": "4",
                "completed_at": "2026-01-11T09:30:00+01:00",
            },
            {"employee_id": "3", "cycle": "2025-H2", "rating": ""},  # not rated
        ],
        ("employee_id", "cycle", "rating", "rating_scale_max", "completed_at"),
        delimiter=";",
    )
    write_csv(
        tmp_path / "goals.csv",
        [
            {
                "employee_id": "2",
                "title": "Ship v2",
                "due_date": "2026-06-30",
                "progress": "40%",
                "status": "In progress",
            }
        ],
        ("employee_id", "title", "due_date", "progress", "status"),
    )
    conn = connector(tmp_path, reviews="reviews.csv", goals="goals.csv")
    first, second = conn.read_reviews(None, full=True).events
    assert first.source == "hr" and first.source_event_id == "1:2025-H2"
    assert first.rating == 0.25 and first.raw_rating == 2 and first.scale_max == 5
    assert first.completed_at == datetime(2026, 1, 10, tzinfo=UTC)
    assert second.rating == pytest.approx(2.5 / 3) and second.scale_max == 4
    assert second.completed_at == datetime(2026, 1, 11, 8, 30, tzinfo=UTC)
    (goal,) = conn.read_goals(None, full=True).goals
    assert goal.owner_external_id == "2" and goal.progress == 40 and goal.status == "in_progress"
    assert goal.due_date == date(2026, 6, 30) and goal.source_line == 2


def test_csv_check_reports_each_file(tmp_path: Path) -> None:
    write_csv(tmp_path / "people.csv", company(3), delimiter=";")
    (tmp_path / "reviews.csv").write_text("employee_id,cycle\n1,2025\n", encoding="utf-8")
    results = connector(tmp_path, reviews="reviews.csv", goals="missing.csv").check()
    assert [r.ok for r in results] == [True, False, False]
    assert "3 rows" in results[0].message and "';'" in results[0].message
    assert "missing required column rating" in results[1].message
    assert "missing.csv: file not found" in results[2].message


def test_csv_config_rejects_bad_settings() -> None:
    with pytest.raises(ValidationError, match="delimiter"):
        CsvConfig.model_validate({"plugin": "csv", "people": "p.csv", "delimiter": ":"})
    with pytest.raises(ValidationError, match=r"columns\.nickname"):
        CsvConfig.model_validate({"plugin": "csv", "people": "p.csv", "columns": {"nickname": "x"}})
    with pytest.raises(ValidationError, match="people"):
        CsvConfig.model_validate({"plugin": "csv"})
    tab = CsvConfig.model_validate({"plugin": "csv", "people": "p.csv", "delimiter": "tab"})
    assert tab.delimiter == "\t"


# -- bad input: one clear error naming the file and line ---------------------------------------


def bad(tmp_path: Path, content: bytes | str, **settings: object) -> str:
    path = tmp_path / "people.csv"
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    with pytest.raises(InputDataError) as info:
        people(tmp_path, **settings)
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message
    return message


GOOD = "id,first_name,last_name,manager_id,hire_date\n1,A,B,,2020-01-01\n"


def test_csv_missing_required_column_names_it_and_the_headers(tmp_path: Path) -> None:
    message = bad(tmp_path, "id;first_name;surname\n1;A;B\n")
    assert "people.csv:1: missing required column last_name" in message
    assert "headers found: id, first_name, surname" in message


def test_csv_explicitly_mapped_column_must_exist(tmp_path: Path) -> None:
    message = bad(tmp_path, GOOD, columns={"email": "Work Email"})
    assert "missing required column Work Email" in message


def test_csv_wrong_number_of_fields(tmp_path: Path) -> None:
    message = bad(tmp_path, GOOD + "2,C,D,1,2020-01-01,extra\n3,E,F\n")
    assert "people.csv:3: 6 fields, but the header has 5" in message


def test_csv_unparseable_date_names_the_column(tmp_path: Path) -> None:
    message = bad(tmp_path, GOOD + '"2","C, jr","D",1,31/01/2020\n')
    assert "people.csv:3: column hire_date: unparseable date '31/01/2020'" in message


def test_csv_invalid_email_and_timezone(tmp_path: Path) -> None:
    header = "id,first_name,last_name,Mail,timezone\n"
    message = bad(tmp_path, header + "1,A,B,not-an-email,\n", columns={"email": "Mail"})
    assert "people.csv:2: column Mail: not an email address" in message
    message = bad(tmp_path, header + "1,A,B,a@b.c,Mars/Olympus\n", columns={"email": "Mail"})
    assert "people.csv:2: column timezone: unknown time zone 'Mars/Olympus'" in message


def test_csv_unknown_status_and_empty_id(tmp_path: Path) -> None:
    message = bad(tmp_path, "id,first_name,last_name,status\n1,A,B,Active\n2,C,D,Gone fishing\n")
    assert "people.csv:3: column status: unknown status 'Gone fishing'" in message
    message = bad(tmp_path, "id,first_name,last_name\n1,A,B\n ,C,D\n")
    assert "people.csv:3: column id: empty employee id" in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "the file is empty"),
        (b"\r\n \r\n", "the file is empty"),
        (b"id,first_name,last_name\r\n", "no people after the header line"),
        (b"id,first_name\x00,last_name\n1,A,B\n", "not a text file"),
        (bytes(range(256)) * 4, "not a text file"),
        (b"PK\x03\x04\x14\x00\x06\x00", "not a text file: it is a ZIP archive (an .xlsx"),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(1, 32)) * 8, "not a text file"),
    ],
)
def test_csv_not_text_or_empty(tmp_path: Path, content: bytes, expected: str) -> None:
    assert expected in bad(tmp_path, content)


def test_csv_undecodable_in_the_given_encoding(tmp_path: Path) -> None:
    message = bad(tmp_path, GOOD.encode() + "2,Jürgen,X,1,\n".encode("cp1252"), encoding="utf-8")
    assert "people.csv:3: not a text file in utf-8" in message


def test_csv_duplicate_header(tmp_path: Path) -> None:
    assert "names column 'ID' twice" in bad(tmp_path, "id,first_name,last_name,ID\n1,A,B,1\n")


def test_csv_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match=r"people\.csv: file not found"):
        people(tmp_path)


def test_csv_bad_reviews(tmp_path: Path) -> None:
    write_csv(tmp_path / "people.csv", company(3))
    conn = connector(tmp_path, reviews="reviews.csv")
    cases = {
        "employee_id,cycle,rating\n1,2025,6\n": "reviews.csv:2: column rating: rating 6 is outside its scale 1..5",
        "employee_id,cycle,rating\n1,2025,good\n": "reviews.csv:2: column rating: not a number: 'good'",
        "employee_id,cycle,rating\n1,2025,3\n1,2025,4\n": "reviews.csv:3: a second review of employee '1' in cycle '2025' (first at line 2)",
        "employee_id,cycle,rating,completed_at\n1,2025,3,yesterday\n": "reviews.csv:2: column completed_at: unparseable date",
        "employee_id,rating\n1,3\n": "reviews.csv:1: missing required column cycle",
        # The column the problem is in, not always the rating's.
        "employee_id,cycle,rating,completed_at\n1,2025,3,9999-12-31T00:00:00Z\n": "reviews.csv:2: column completed_at:",
        # A scale of 0 is a value: refused, not the config's 5 in its place.
        "employee_id,cycle,rating,rating_scale_max\n1,2025,3,0\n": "reviews.csv:2: column rating_scale_max:",
    }
    for content, expected in cases.items():
        (tmp_path / "reviews.csv").write_text(content, encoding="utf-8")
        with pytest.raises(InputDataError) as info:
            conn.read_reviews(None, full=True)
        assert expected in str(info.value), content


def test_csv_documented_config_is_valid(tmp_path: Path) -> None:
    """The example in docs/csv.md loads, and its mapping reads a file with those headers."""
    from coachbridge.config import load_config

    docs = Path(__file__).resolve().parents[2] / "docs" / "csv.md"
    example = docs.read_text(encoding="utf-8").split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "coachbridge.toml").write_text(example, encoding="utf-8")
    config = load_config(tmp_path / "coachbridge.toml", {"csv": CsvConfig})
    hr = config.connectors["hr"]
    assert isinstance(hr, CsvConfig)
    assert hr.headers("people")["manager_id"] == "Reports To"
    assert hr.headers("people")["job_title"] == "job_title"
    assert hr.deactivation_limit(200) == 20


def test_csv_malformed_quoting_names_the_record_line(tmp_path: Path) -> None:
    message = bad(tmp_path, 'id,first_name,last_name\n1,A,B\n2,"C,D\n3,E,F\n')
    assert "people.csv:3: malformed CSV: unexpected end of data" in message
    message = bad(tmp_path, 'id,first_name,last_name\n1,A,B\n2,"C"x,D\n')
    assert "people.csv:3: malformed CSV" in message


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_csv_delimiter_detection_trusts_the_header(tmp_path: Path, delimiter: str) -> None:
    # list cells full of ';' and '|', and titles with commas, must not fool the detection
    rows = [
        person("1", skills="a;b;c;d;e;f", job_title="VP, Sales; EMEA"),
        person("2", "1", skills="x|y|z|w", interests="p;q"),
    ]
    write_csv(tmp_path / "people.csv", rows, (*HEADER, "interests"), delimiter=delimiter)
    first, second = people(tmp_path).records
    assert first.job_title == "VP, Sales; EMEA" and first.skills == ["a", "b", "c", "d", "e", "f"]
    assert second.manager_external_id == "1" and second.skills == ["x", "y", "z", "w"]


def test_csv_people_path_is_a_folder(tmp_path: Path) -> None:
    (tmp_path / "people.csv").mkdir()
    with pytest.raises(InputDataError, match="is a folder, not a file"):
        people(tmp_path)
