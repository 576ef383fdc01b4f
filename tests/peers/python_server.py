"""An MCP server built with the official Python SDK, used as an upstream of the gateway.

The SDK serves both protocol eras, so the gateway reaches it with 2026-07-28 (stateless,
input_required) after its `server/discover` probe.

Usage: python_server.py stdio | python_server.py http PORT
"""

import sys

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import ElicitRequest, ElicitRequestFormParams, InputRequiredResult

server = MCPServer("python-peer", instructions="Python SDK fixture server for Portcullis tests")


@server.tool()
def add(a: int, b: int) -> int:
    """Adds two integers."""
    return a + b


@server.tool()
async def confirm(ctx: Context, what: str) -> str:
    """Asks the user to confirm something, through an input_required round."""
    if ctx.input_responses:
        answer = ctx.input_responses.get("ok")
        content = getattr(answer, "content", None) or {}
        return f"{what}: confirmed={content.get('yes')} state={ctx.request_state}"
    return InputRequiredResult(
        input_requests={
            "ok": ElicitRequest(
                params=ElicitRequestFormParams(
                    message=f"Confirm {what}?",
                    requested_schema={"type": "object", "properties": {"yes": {"type": "boolean"}}, "required": ["yes"]},
                )
            )
        },
        request_state="round1",
    )


@server.resource("note://hello")
def hello() -> str:
    """A static note."""
    return "hello from python"


if __name__ == "__main__":
    if sys.argv[1] == "stdio":
        server.run("stdio")
    else:
        server.run(transport="streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
