"""Checks schemathesis runs on every answer of RuQi, beside its own (tests/tests/fuzz.rs).

RuQi answers every request to a route with HTTP 200 and its envelope (`stat`), the reason in a
one-line `x-reason` header; 401/403 carry the envelope too; an unknown path is HTTP 400 with an
empty body. Nothing else, and never a 5xx.
"""

import json

import schemathesis

STATS = {"OK", "ERR", "ERR_BAD_PARAMS", "ERR_SERVER_EXCEPTION", "ERR_UNAUTHORIZED", "ERR_FORBIDDEN"}


@schemathesis.check
def ruqi_envelope(ctx, response, case):
    status = response.status_code
    if status == 400:
        assert response.headers.get("x-reason") == ["API Not Found"], "HTTP 400 is only for unknown paths"
        return
    assert status in (200, 401, 403), f"unexpected HTTP status {status}"
    if response.headers.get("content-type", [""])[0].startswith("text/plain"):
        return  # display=text
    body = json.loads(response.content)
    assert isinstance(body, dict) and body.get("stat") in STATS, f"not RuQi's envelope: {body!r}"
    if body["stat"] != "OK":
        assert list(body) == ["stat"], f"an error body holds only stat: {body!r}"
        reason = response.headers.get("x-reason", [""])[0]
        assert reason and reason.isascii() and "\n" not in reason, f"x-reason must be one ASCII line: {reason!r}"
