"""Drives the Portcullis gateway with the official Python MCP SDK client.

Usage: python_client.py MODE TARGET...
  MODE    legacy | auto           (the SDK's era selection)
  TARGET  http URL of the gateway, or `stdio` followed by the command that starts it

Prints one JSON object with what a user of the SDK would see; the Rust test asserts on it.
"""

import asyncio
import json
import sys

from mcp import Client, StdioServerParameters


async def main() -> None:
    mode, target = sys.argv[1], sys.argv[2:]
    if target[0] == "stdio":
        server = StdioServerParameters(command=target[1], args=target[2:])
    else:
        server = target[0]
    async with Client(server, mode=mode) as client:
        tools = await client.list_tools()
        echo = await client.call_tool("demo__echo", {"message": "from python"})
        resource = await client.read_resource("demo+test://static-text")
        prompt = await client.get_prompt("demo__test_simple_prompt")
        error = await client.call_tool("demo__test_error_handling", {})
        out = {
            "protocol_version": client.protocol_version,
            "tools": [t.name for t in tools.tools],
            "echo": echo.content[0].text,
            "resource": resource.contents[0].text,
            "resource_uri": str(resource.contents[0].uri),
            "prompt": prompt.messages[0].content.text,
            "tool_error": error.is_error,
        }
    print(json.dumps(out))


asyncio.run(main())
