"""docs/protocol.md and the server agree: every client example validates, every type is documented."""

from __future__ import annotations

import json
import re

from mathia.realtime import schemas
from tests.processes import PROJECT_ROOT

DOC = (PROJECT_ROOT / "docs" / "protocol.md").read_text()
CLIENT_PART, SERVER_PART = DOC.split("## Server frames")


def _examples(text: str) -> list[dict[str, object]]:
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)\n```", text, flags=re.S)]


def test_every_client_example_is_a_valid_frame() -> None:
    examples = _examples(CLIENT_PART)
    for example in examples:
        schemas.CLIENT_FRAME.validate_python(example)
    assert {e["type"] for e in examples} == set(schemas.FRAME_TYPES)


def test_every_server_frame_the_code_emits_is_documented() -> None:
    documented = {e["type"] for e in _examples(SERVER_PART)}
    # Provider wire formats (assistant/llm, testing) are not Mathia's protocol.
    sources = "".join(
        p.read_text()
        for p in (PROJECT_ROOT / "mathia").rglob("*.py")
        if not {"testing", "llm"} & set(p.relative_to(PROJECT_ROOT / "mathia").parts)
    )
    internal = {"readyz.ping", "assistant.stop"}  # channel-layer messages between processes, never sent to clients
    emitted = set(re.findall(r'\{"type": "([a-z_.]+)"', sources)) - set(schemas.FRAME_TYPES) - internal
    emitted |= set(re.findall(r'_publish_message\("([a-z.]+)"', sources))
    assert emitted <= documented, emitted - documented
    error_codes = set(re.findall(r"\| `([a-z_]+)` \|", SERVER_PART))
    for code in [
        "invalid_json",
        "unknown_type",
        "invalid_frame",
        "frame_too_large",
        "not_found",
        "not_member",
        "rate_limited",
    ]:
        assert code in error_codes
