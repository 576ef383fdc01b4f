"""Python SDK client against the gateway fronting Python SDK servers (`python_server.py`).

Usage: python_mrtr_client.py MODE URL   (MODE: legacy | auto)

The `confirm` tool asks for input with an input_required result. A legacy client gets it
as an elicitation request from the gateway; a 2026-07-28 client gets input_required itself.
Either way the client's elicitation callback answers. Prints one JSON object.
"""

import asyncio
import json
import sys

from mcp import Client
from mcp_types import ElicitResult


async def main() -> None:
    mode, url = sys.argv[1], sys.argv[2]
    asked = []

    async def elicit(_ctx, params):
        asked.append(params.message)
        return ElicitResult(action="accept", content={"yes": True})

    async with Client(url, mode=mode, elicitation_callback=elicit) as client:
        tools = await client.list_tools()
        added = await client.call_tool("py__add", {"a": 2, "b": 3})
        confirmed_http = await client.call_tool("py__confirm", {"what": "deploy"})
        confirmed_stdio = await client.call_tool("pys__confirm", {"what": "rollback"})
        note = await client.read_resource("py+note://hello")
        print(json.dumps({
            "protocol_version": client.protocol_version,
            "tools": sorted(t.name for t in tools.tools),
            "add": added.content[0].text,
            "confirm_http": confirmed_http.content[0].text,
            "confirm_stdio": confirmed_stdio.content[0].text,
            "note": note.contents[0].text,
            "asked": asked,
        }))


asyncio.run(main())
