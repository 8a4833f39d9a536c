"""The issuer's settings: who sends invoices, their payment terms and tax rate.

One mechanism: the environment variable PAYOFF_ISSUER names a TOML file (see
docs/invoices.md). Without it, invoices are still numbered (prefix "INV") and rendered with
a placeholder issuer and no tax. The file is read when an invoice is finalized (its details
are kept on the invoice, so a later change of the file does not change issued invoices) and
when a draft is rendered.

    name = "Example AI Ltd"
    address = "1 Main Street\\nSpringfield"
    tax_id = "GB123456789"
    email = "billing@example.com"
    payment_terms_days = 30
    tax_rate = "0.20"          # a fraction; omit for no tax line
    tax_label = "VAT"
    logo = "logo.png"          # relative to this file
    number_prefix = "INV"
"""

from __future__ import annotations

import base64
import mimetypes
import os
import tomllib
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from payoff.core.printable import NO_ISSUER, Issuer, IssuerError

ISSUER_VARIABLE = "PAYOFF_ISSUER"
MAX_LOGO_BYTES = 512 * 1024
TEXT_FIELDS = ("name", "address", "tax_id", "email", "tax_label", "logo", "number_prefix")


def configured_issuer(environ: Mapping[str, str] = os.environ) -> Issuer:
    """The issuer PAYOFF_ISSUER's file describes; a placeholder when it is not set."""
    path = environ.get(ISSUER_VARIABLE)
    return NO_ISSUER if not path else load_issuer(Path(path))


def load_issuer(path: Path) -> Issuer:
    try:
        with path.open("rb") as file:
            settings = tomllib.load(file, parse_float=Decimal)
    except OSError as exc:
        raise IssuerError(f"{ISSUER_VARIABLE}: cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise IssuerError(f"{path}: not valid TOML ({exc})") from None
    issuer = Issuer(**_fields(settings, path))
    errors = issuer.validate()
    if errors:
        raise IssuerError(f"{path}: " + "; ".join(errors))
    return issuer


def _fields(settings: dict[str, Any], path: Path) -> dict[str, Any]:
    known = {*TEXT_FIELDS, "payment_terms_days", "tax_rate"}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise IssuerError(f"{path}: unknown settings {', '.join(unknown)}")
    fields: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        if name in settings:
            if not isinstance(settings[name], str):
                raise IssuerError(f"{path}: {name}: expected text")
            fields[name] = settings[name]
    if "name" not in fields:
        raise IssuerError(f"{path}: name: the issuer needs a name")
    if "logo" in fields:
        fields["logo"] = str((path.parent / fields["logo"]).resolve())
    terms = settings.get("payment_terms_days", 30)
    if not isinstance(terms, int) or isinstance(terms, bool):
        raise IssuerError(f"{path}: payment_terms_days: a whole number of days")
    fields["payment_terms_days"] = terms
    if "tax_rate" in settings:
        fields["tax_rate"] = _rate(settings["tax_rate"], path)
    return fields


def _rate(value: object, path: Path) -> Decimal:
    # A string or a TOML number read as an exact decimal (never through float).
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise IssuerError(f'{path}: tax_rate: a decimal such as "0.20"')
    try:
        return Decimal(value)
    except InvalidOperation:
        raise IssuerError(f"{path}: tax_rate: {value!r} is not a decimal number") from None


def logo_data_uri(issuer: Issuer) -> str | None:
    """The issuer's logo as a data URI, so that a document needs no other file."""
    if issuer.logo is None:
        return None
    path = Path(issuer.logo)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IssuerError(f"logo: cannot read {path}: {exc.strerror}") from None
    if len(data) > MAX_LOGO_BYTES:
        raise IssuerError(f"logo: {path} is over {MAX_LOGO_BYTES // 1024} KiB")
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if not kind.startswith("image/"):
        raise IssuerError(f"logo: {path} is not an image (PNG, JPEG, SVG)")
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"
