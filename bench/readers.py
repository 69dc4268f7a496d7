"""Every reader of caller input, fed pathological bodies of 16, 64 and 256 KB: the time per KB must not grow.

    bench/run readers                      # every reader, 16, 64 and 256 KB
    .venv/bin/python -m bench.readers --sizes 16,64 --only json-escaped-quotes-after-nbsp

A reader is what turns bytes a caller chose into something the bridge acts
on, before or after the signature check: the JSON body reader
(``deskbridge.jsonbody``), the signature headers (``deskbridge.auth``: a
Standard Webhooks ``webhook-signature``, Jira's ``X-Hub-Signature``,
Syskit Point's ``Signature``), and the desk field readers with the
validation after them (``deskbridge.desks.jira``, ``deskbridge.desks.servicenow``
and ``deskbridge.model.validate``). Each case builds the worst body known for
its reader at each size, calls the reader directly (no stack: these are pure
functions), and reports milliseconds per KB. Linear time means the same
figure at every size; ``goals`` fails a reader whose 256 KB figure is more
than 4 times its 16 KB figure (quadratic work multiplies it by 16).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.harness import emit, machine

KB = 1024
# A reader whose time per KB at the largest size is more than this multiple of the smallest is not linear.
GROWTH_LIMIT = 4.0
# Stop repeating a case once one run took this long (the quadratic reader of 1ef2909 takes minutes at 256 KB).
REPEAT_UNDER_SECONDS = 2.0


def _json_escaped_quotes(size: int) -> bytes:
    """The body of issue 21: a U+00A0, then a string that never ends, full of escaped quotes."""
    head = '\xa0{"issue": "'.encode()
    return head + b'\\"' * ((size - len(head)) // 2)


def _json_escaped_quotes_plain(size: int) -> bytes:
    head = b'{"issue": "'
    return head + b'\\"' * ((size - len(head)) // 2)


def _json_quotes_and_spaces(size: int) -> bytes:
    """Quotes and no-break spaces alternating: every quote opens a string that the next space would end."""
    unit = '"\xa0'.encode()
    return b"{" + unit * ((size - 1) // len(unit))


def _json_nesting(size: int) -> bytes:
    return b"[" * size


def _json_many_spaces(size: int) -> bytes:
    """A valid array with a no-break space between every token."""
    unit = "\xa01,".encode()
    count = (size - 4) // len(unit)
    return b"[" + unit * count + b"1]"


def _json_long_number(size: int) -> bytes:
    return b'{"templateId": ' + b"7" * (size - 16) + b"}"


def _json_backslashes(size: int) -> bytes:
    """A string of backslash pairs that ends in a lone backslash: no closing quote to be found."""
    head = '\xa0{"a": "'.encode()
    return head + b"\\\\" * ((size - len(head) - 1) // 2) + b"\\"


def _parse(body: bytes) -> Callable[[], object]:
    from deskbridge import jsonbody
    from deskbridge.model import InvalidRequest

    def run() -> object:
        try:
            return jsonbody.parse(body)
        except InvalidRequest as refused:
            return refused

    return run


def _verifying(verifier: Any, body: bytes, headers: dict[str, str]) -> Callable[[], object]:
    """One signature check, its refusal returned rather than raised (a hostile input is meant to fail)."""
    from deskbridge.auth import SignatureError

    def run() -> object:
        try:
            return verifier.verify(body, headers)
        except SignatureError as refused:
            return refused

    return run


def _standard_signature_header(size: int) -> Callable[[], object]:
    """A webhook-signature of one long base64-looking entry that fails at its very end."""
    from deskbridge.auth import StandardWebhook

    header = "v1," + "A" * (size - 4) + "!"
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(int(time.time())), "webhook-signature": header}
    verifier = StandardWebhook(["whsec_" + "MDEyMzQ1Njc4OWFiY2RlZg=="])

    return _verifying(verifier, b"{}", headers)


def _standard_signature_body(size: int) -> Callable[[], object]:
    """A well-formed signature over a body of the given size (the HMAC itself)."""
    from deskbridge.auth import StandardWebhook

    body = b'{"a":"' + b"x" * (size - 8) + b'"}'
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(time.time())),
        "webhook-signature": "v1," + "A" * 43 + "=",
    }
    verifier = StandardWebhook(["whsec_" + "MDEyMzQ1Njc4OWFiY2RlZg=="])

    return _verifying(verifier, body, headers)


def _hub_signature(size: int) -> Callable[[], object]:
    from deskbridge.auth import HubSignature

    body = b"x" * size
    headers = {"X-Hub-Signature": "sha256=" + "a" * size}
    verifier = HubSignature(["jira-secret"])

    return _verifying(verifier, body, headers)


def _point_signature(size: int) -> Callable[[], object]:
    from deskbridge.auth import PointSignature

    body = b"x" * size
    headers = {"Signature": "A" * size, "Algorithm": "HMACSHA256"}
    verifier = PointSignature(["point-key"])

    return _verifying(verifier, body, headers)


def _policy() -> Any:
    from deskbridge.model import Limits, Policy

    return Policy(default_template_ids={"": 7}, limits=Limits(max_owners=100, max_members=1000))


def _jira_fields(size: int) -> Callable[[], object]:
    """An approved issue whose summary, description and owner field are one long hostile string each."""
    from deskbridge.desks import Ignored
    from deskbridge.desks.jira import JiraFields, parse
    from deskbridge.model import InvalidRequest, validate

    third = size // 3
    owners = ("a@b.c;" + " ," * (third // 2))[:third]
    payload = {
        "webhookEvent": "jira:issue_updated",
        "changelog": {"items": [{"fieldId": "status", "toString": "Approved"}]},
        "issue": {
            "key": "HR-42",
            "fields": {
                "summary": ("\xa0 \u2028" * third)[:third] + "x",
                "description": ("a-" * third)[:third] + "!",
                "customfield_10060": owners + "@" * 64,
                "status": {"name": "Approved"},
            },
        },
    }
    fields = JiraFields(owners="customfield_10060", description="description")

    def run() -> object:
        try:
            approval = parse(payload, fields)
            if isinstance(approval, Ignored):
                return approval
            return validate(approval.draft, _policy())
        except InvalidRequest as refused:
            return refused

    return run


def _servicenow_fields(size: int) -> Callable[[], object]:
    """A request item whose variables and people are long hostile strings."""
    from deskbridge.desks.servicenow import CatalogVariables, parse
    from deskbridge.model import InvalidRequest, validate

    quarter = size // 4
    payload = {
        "number": "RITM0010452",
        "sys_id": "0" * 32,
        "variables": {
            "site_name": ("\xa0-_" * quarter)[:quarter],
            "site_description": ("x\r\n" * quarter)[:quarter],
            "workspace_type": " " * quarter + "teams",
            "is_private": "t" * 1000,
        },
        "owners": ["," * quarter + "a@b.c"],
        "members": ("0" * 32 + ",") * (quarter // 33),
    }

    def run() -> object:
        try:
            return validate(parse(payload, CatalogVariables()).draft, _policy())
        except InvalidRequest as refused:
            return refused

    return run


CASES: dict[str, tuple[str, Callable[[int], Callable[[], object]]]] = {
    "json-escaped-quotes-after-nbsp": ("jsonbody.parse", lambda n: _parse(_json_escaped_quotes(n))),
    "json-escaped-quotes": ("jsonbody.parse", lambda n: _parse(_json_escaped_quotes_plain(n))),
    "json-quotes-and-spaces": ("jsonbody.parse", lambda n: _parse(_json_quotes_and_spaces(n))),
    "json-backslashes-after-nbsp": ("jsonbody.parse", lambda n: _parse(_json_backslashes(n))),
    "json-nesting": ("jsonbody.parse", lambda n: _parse(_json_nesting(n))),
    "json-spaces-between-tokens": ("jsonbody.parse", lambda n: _parse(_json_many_spaces(n))),
    "json-long-number": ("jsonbody.parse", lambda n: _parse(_json_long_number(n))),
    "webhook-signature-header": ("auth.StandardWebhook", _standard_signature_header),
    "webhook-signature-body": ("auth.StandardWebhook", _standard_signature_body),
    "x-hub-signature": ("auth.HubSignature", _hub_signature),
    "point-signature": ("auth.PointSignature", _point_signature),
    "jira-fields": ("desks.jira + model.validate", _jira_fields),
    "servicenow-fields": ("desks.servicenow + model.validate", _servicenow_fields),
}


def measure(run: Callable[[], object]) -> float:
    """Seconds of one call: the fastest of up to 9 runs (the least disturbed by other work on the machine),
    fewer when one run is slow."""
    times: list[float] = []
    while len(times) < 9:
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
        if times[-1] > REPEAT_UNDER_SECONDS or sum(times) > 3 * REPEAT_UNDER_SECONDS:
            break
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="16,64,256", help="body sizes in KB, comma-separated (default 16,64,256)")
    parser.add_argument("--only", default="", help="case names, comma-separated (default: every case)")
    args = parser.parse_args(argv)
    sizes = [int(part) for part in args.sizes.split(",") if part.strip()]
    names = [n for n in args.only.split(",") if n] or list(CASES)
    figures: dict[str, Any] = {}
    failed: list[str] = []
    for name in names:
        reader, build = CASES[name]
        per_kb = {}
        for size in sizes:
            seconds = measure(build(size * KB))
            per_kb[f"{size}KB"] = round(seconds * 1000 / size, 4)
        values = list(per_kb.values())
        growth = values[-1] / values[0] if values[0] > 0 else 0.0
        figures[name] = {"reader": reader, "ms_per_kb": per_kb, "growth": round(growth, 2)}
        if len(values) > 1 and growth > GROWTH_LIMIT:
            failed.append(name)
    emit(
        {
            "benchmark": "readers",
            "sizes_kb": sizes,
            "cases": figures,
            "goals": {
                "linear (ms per KB at the largest size within 4x the smallest)": not failed,
                "not_linear": failed,
            },
            "machine": machine(),
        }
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
