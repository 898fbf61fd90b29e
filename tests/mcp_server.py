"""A tiny stdio MCP server (FastMCP) for the tool tests."""

from mcp.server.fastmcp import FastMCP

server = FastMCP("arithmetic")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


if __name__ == "__main__":
    server.run("stdio")
