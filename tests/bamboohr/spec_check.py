"""Every answer of the fake BambooHR held to BambooHR's OpenAPI document (openapi-core).

The fake calls ``violation(...)`` for each answer it gives from its handlers; an answer whose
status the operation does not document, or whose JSON body does not match the documented
schema, is a violation, and the fake fails the test when it stops. Injected faults (HTML, XML,
cut-off bodies, throttling, a refused key) imitate failures on purpose and are not checked.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict
from werkzeug.wrappers import Request, Response

SPEC = Path(__file__).resolve().parent / "spec" / "bamboohr-public-openapi.yaml"
#: The spec's server, ``https://{companyDomain}.bamboohr.com``, for the fake's company.
SERVER = "https://acme.bamboohr.com"


@functools.cache
def openapi() -> OpenAPI:
    with SPEC.open(encoding="utf-8") as handle:
        spec = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    # The document itself is BambooHR's, checked once by its conformance tests; validating it
    # again on every load costs seconds.
    return OpenAPI.from_dict(spec, config=Config(spec_validator_cls=None))


class _SpecRequest:
    """The fake's request as openapi-core sees it: on the spec's server, at ``/api/v1/...``."""

    def __init__(self, request: Request, path: str) -> None:
        self.host_url = SERVER
        self.path = path
        self.full_url_pattern = SERVER + path
        self.method = request.method.lower()
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(request.args),
            header=Headers(request.headers),
            cookie=ImmutableMultiDict(request.cookies),
        )
        self.content_type = request.mimetype or "application/json"
        self.body = request.get_data()


class _SpecResponse:
    def __init__(self, response: Response) -> None:
        self.data = response.get_data()
        self.status_code = response.status_code
        self.content_type = response.mimetype or ""
        self.headers = Headers(response.headers)


def violation(request: Request, path: str, response: Response) -> str | None:
    """Why ``response`` to ``request`` (at spec path ``path``) is not what BambooHR documents."""
    try:
        openapi().validate_response(_SpecRequest(request, path), _SpecResponse(response))
    except Exception as exc:  # every openapi-core finding is a violation to report
        detail = "; ".join(str(e) for e in getattr(exc, "schema_errors", ()) or ()) or str(exc)
        return f"{request.method} {path} -> {response.status_code}: {type(exc).__name__}: {detail}"
    return None


def describe(violations: list[Any]) -> str:
    return "the fake BambooHR answered what BambooHR does not document:\n" + "\n".join(
        f"  {v}" for v in violations
    )
