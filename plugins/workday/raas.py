"""Reports-as-a-Service: report URLs, the report's schema (``?xsds``) and streamed rows.

A RaaS report answers ``{"Report_Entry": [ {...}, ... ]}`` in one response that may take minutes
and be large, so rows are parsed from the socket one at a time (ijson) and never held as one
document. Workday's quirks are handled where values are read (see ``values.py``).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import ijson
import requests
from coachbridge.errors import ConnectorError
from coachbridge_workday.client import WorkdayClient, describe_error_body

_XSD = "{http://www.w3.org/2001/XMLSchema}"


@dataclass(frozen=True)
class Report:
    """One configured report: ``key`` is its config key, ``ref`` the value given there."""

    key: str
    ref: str
    url: str

    @property
    def label(self) -> str:
        return f"{self.key} {self.ref!r}"


def report_url(root: str, tenant: str, ref: str) -> str:
    """``owner/Report_Name`` -> the customreport2 URL; a full URL is kept (``format=json`` forced)."""
    if ref.startswith(("https://", "http://")):
        parts = urlsplit(ref)
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "format"]
        return urlunsplit(parts._replace(query=urlencode(query)))
    owner, _, name = ref.strip("/").partition("/")
    if not owner or not name:
        raise ConnectorError(f"report {ref!r}: use owner/Report_Name or the report's full URL")
    return f"{root}/ccx/service/customreport2/{quote(tenant)}/{quote(owner)}/{quote(name)}"


def _sep(url: str) -> str:
    return "&" if urlsplit(url).query else "?"


@dataclass(frozen=True)
class ReportSchema:
    """What a report's XSD says: its columns, and the XSD type (local name: ``date``,
    ``dateTime``, ...) of each typed element or attribute outside the rows, its prompts."""

    columns: frozenset[str]
    prompt_types: Mapping[str, str]
    #: Column -> its XSD type's local name (``string``, ``date``, ...) where the schema types it.
    column_types: Mapping[str, str] = field(default_factory=dict)

    def prompt_type(self, name: str) -> str | None:
        return self.prompt_types.get(name)


def parse_xsd(text: str) -> ReportSchema:
    """The columns of ``Report_EntryType`` and the types of the report's parameters.

    The stdlib parser resolves no external entities, and expat (>= 2.4.1, as bundled with every
    supported Python) refuses entity-expansion bombs, so a hostile schema cannot hurt us.
    """
    root = ET.fromstring(text)
    entry = next(
        (c for c in root.iter(f"{_XSD}complexType") if c.get("name") == "Report_EntryType"),
        None,
    )
    if entry is None:
        raise ValueError("no Report_EntryType in the schema")
    names: set[str] = set()
    types: dict[str, str] = {}
    for group in entry:  # xsd:sequence / xsd:all / xsd:choice
        for element in group:
            if element.tag == f"{_XSD}element" and element.get("name"):
                names.add(element.get("name", ""))
                if element.get("type"):
                    types[element.get("name", "")] = element.get("type", "").rpartition(":")[2]
    # Prompts are declared outside the rows, typed xsd:date or xsd:dateTime (a parameters type
    # or attributes of Report_Data, depending on the report); read every typed declaration.
    in_rows = set(entry.iter())
    prompts: dict[str, str] = {}
    for node in root.iter():
        if node in in_rows or node.tag not in (f"{_XSD}element", f"{_XSD}attribute"):
            continue
        name, xsd_type = node.get("name"), node.get("type")
        if name and xsd_type and name not in ("Report_Data", "Report_Entry"):
            prompts[name] = xsd_type.rpartition(":")[2]
    return ReportSchema(frozenset(names), prompts, types)


def parse_xsd_columns(text: str) -> set[str]:
    """The column names of ``Report_EntryType`` in a RaaS report's XSD."""
    return set(parse_xsd(text).columns)


def fetch_columns(client: WorkdayClient, report: Report) -> set[str] | None:
    """The report's columns from ``?xsds`` (or ``?xsd``); None when the tenant offers neither."""
    schema = fetch_schema(client, report)
    return set(schema.columns) if schema is not None else None


def fetch_schema(client: WorkdayClient, report: Report) -> ReportSchema | None:
    """The report's schema from ``?xsds`` (or ``?xsd``); None when the tenant offers neither."""
    for flag in ("xsds", "xsd"):
        response = client.request(
            "GET",
            report.url + _sep(report.url) + flag,
            what=f"{report.label} schema",
            raise_404=False,
            ok=(200,),
        )
        if response.status_code != 200:
            response.close()
            continue
        try:
            return parse_xsd(response.text)
        except (ET.ParseError, ValueError):
            continue
    return None


def stream_rows(
    client: WorkdayClient,
    report: Report,
    prompts: Mapping[str, str] | None = None,
) -> Iterator[dict[str, Any]]:
    """Run the report and yield its rows one at a time, straight from the socket."""
    params = {"format": "json", **(prompts or {})}
    timeout = (30.0, client.config.report_timeout.total_seconds())
    response = client.request(
        "GET",
        report.url,
        what=f"{report.label}",
        params=params,
        stream=True,
        timeout=timeout,
        raise_404=False,
        ok=(200,),
    )
    if response.status_code == 404:
        said = describe_error_body(response)
        response.close()
        raise ConnectorError(
            f"connector {client.connector}: {report.label} not found (HTTP 404"
            f"{': ' + said if said else ''}); check connectors.{client.connector}.{report.key} "
            "(owner/Report_Name as in the report's Web Service > View URLs)"
        )
    with response:
        yield from _rows(client, report, response)


def _rows(
    client: WorkdayClient, report: Report, response: requests.Response
) -> Iterator[dict[str, Any]]:
    try:
        stream = _ChunkReader(response.iter_content(chunk_size=65536))
        first = stream.first_byte()
        if first != b"{":
            ctype = (response.headers.get("Content-Type") or "").lower()
            kind = "XML" if first == b"<" else "something other than JSON"
            if "html" in ctype:
                kind = "an HTML page"
            elif not first:
                kind = "an empty body"
            raise ConnectorError(
                f"connector {client.connector}: {report.label} returned {kind}, not JSON; make it "
                "an Advanced report enabled as a web service, and check "
                f"connectors.{client.connector}.{report.key}"
            )
        yield from _entries(client, report, stream)
    except ijson.common.IncompleteJSONError:
        raise _truncated(client, report) from None
    except ijson.common.JSONError as exc:
        raise _bad_json(client, report, exc) from None
    except (requests.exceptions.RequestException, OSError):
        raise _truncated(client, report) from None


def _entries(client: WorkdayClient, report: Report, stream: Any) -> Iterator[dict[str, Any]]:
    """Rows under ``Report_Entry``: a list of objects, or one object where Workday gives one."""
    seen = False
    builder: ijson.ObjectBuilder | None = None
    item_prefix = ""
    for prefix, event, value in ijson.parse(stream, use_float=True):
        if builder is not None:
            builder.event(event, value)
            if prefix == item_prefix and event == "end_map":
                row = builder.value
                builder = None
                yield row
            continue
        if prefix == "" and event == "map_key" and value == "Report_Entry":
            seen = True
        elif event == "start_map" and prefix in ("Report_Entry.item", "Report_Entry"):
            builder = ijson.ObjectBuilder()
            builder.event(event, value)
            item_prefix = prefix
    if not seen:
        raise ConnectorError(
            f"connector {client.connector}: {report.label} has no Report_Entry: is it a RaaS "
            "custom report (customreport2) with format=json?"
        )


class _ChunkReader:
    """A file-like ``read()`` over the response's decoded chunks, for ijson."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def first_byte(self) -> bytes:
        """The first byte that is not white space (b"" for an empty body); it stays unread."""
        while True:
            if not self._pending:
                self._pending = next(self._chunks, b"")
                if not self._pending:
                    return b""
            stripped = self._pending.lstrip()
            if stripped:
                self._pending = stripped
                return stripped[:1]
            self._pending = b""

    def read(self, size: int = -1) -> bytes:
        if size == 0:  # ijson probes read(0) for bytes vs str: consume nothing
            return b""
        if self._pending:
            out, self._pending = self._pending, b""
            return out
        return next(self._chunks, b"")


def _truncated(client: WorkdayClient, report: Report) -> ConnectorError:
    return ConnectorError(
        f"connector {client.connector}: {report.label} ended early (truncated response); "
        "nothing was changed, run the sync again"
    )


def _bad_json(client: WorkdayClient, report: Report, exc: Exception) -> ConnectorError:
    return ConnectorError(
        f"connector {client.connector}: {report.label} is not valid JSON ({exc}); nothing was changed"
    )
