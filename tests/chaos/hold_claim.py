"""Hold one thread's claim in its own process until stdin closes (a second runner elsewhere).

Usage: ``python hold_claim.py sqlite <database> <thread>`` or ``... postgres <url> <thread>``.
Prints ``held`` once the claim is taken.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from atlas_graph.storage.claims import FileClaims, PostgresClaims, ThreadClaims


async def main(kind: str, where: str, thread: str) -> None:
    claims: ThreadClaims = FileClaims(Path(where)) if kind == "sqlite" else PostgresClaims(where)
    async with claims.aclaim(thread):
        print("held", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await claims.aclose()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
