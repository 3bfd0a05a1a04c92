"""``coachbridge.mapping.propose_mapping``: exact names, then aliases, then fuzzy matches."""

from __future__ import annotations

from coachbridge.mapping import FieldMatch, normalize_name, propose_mapping


def test_exact_then_alias_then_fuzzy_each_with_its_confidence() -> None:
    fields = {
        "id": ("Employee_ID",),
        "email": ("Work Email",),
        "manager_id": ("Manager_ID",),
        "department": (),
        "timezone": (),
    }
    columns = ["employee id", "Work E-mail", "Manager ID", "Department Name", "Favourite Colour"]
    by_field = {m.field: m for m in propose_mapping(fields, columns)}
    assert by_field["manager_id"] == FieldMatch("manager_id", "Manager ID", "exact", 100.0)
    assert by_field["id"] == FieldMatch("id", "employee id", "alias", 100.0)
    assert by_field["email"].how == "alias" and by_field["email"].column == "Work E-mail"
    department = by_field["department"]
    assert department.how == "fuzzy" and department.column == "Department Name"
    assert 80 <= department.confidence < 100
    assert by_field["timezone"] == FieldMatch("timezone", None, "none", 0.0)


def test_a_column_goes_to_one_field_and_exact_names_win() -> None:
    # "Manager_ID" is manager_id's exact name: id's fuzzy guess must not take it.
    proposal = propose_mapping({"id": (), "manager_id": ()}, ["Manager_ID"])
    assert [(m.field, m.column) for m in proposal] == [("id", None), ("manager_id", "Manager_ID")]


def test_unrelated_columns_are_not_proposed() -> None:
    [match] = propose_mapping({"email": ("Work Email",)}, ["Hire Date", "Location"])
    assert not match.found


def test_normalize_name() -> None:
    assert normalize_name("Email_-_Work") == normalize_name("email work") == "emailwork"
