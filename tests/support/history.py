"""What a run leaves in Temporal, as text to search: history with payloads decoded, and the
description (search attributes, memo, pending activities with their last failures)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from temporalio.client import WorkflowHandle


def _decoded(node: Any) -> Any:
    """The JSON tree with every payload's base64 `data` decoded, so its text is searchable."""
    if isinstance(node, dict):
        if "data" in node and "metadata" in node and isinstance(node["data"], str):
            try:
                text = base64.b64decode(node["data"]).decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                text = node["data"]
            return {**node, "data": text}
        return {k: _decoded(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_decoded(v) for v in node]
    return node


async def run_text(handle: WorkflowHandle[Any, Any]) -> str:
    """The run's history (payloads decoded), search attributes, memo and pending activities."""
    history = await handle.fetch_history()
    description = await handle.describe()
    memo = await description.memo()
    return "\n".join([
        json.dumps(_decoded(history.to_json_dict()), ensure_ascii=False),
        str(description.raw_description),
        json.dumps(memo, ensure_ascii=False, default=str),
        str(description.search_attributes),
    ])
