"""An accept-all SMTP sink in a process of its own, for the benchmarks.

Each received message appends a line ``<unix time> <X-Genro-Mail-ID>`` to the
output file, so the benchmark process (which would otherwise share the GIL with
the sink) reads arrivals from the file.

    python bench/sink_server.py PORT OUTFILE [--pipelining]
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from typing import IO

from aiosmtpd.smtp import SMTP, Envelope, Session

from mail_proxy.smtp.sink import PipeliningEhlo

MAIL_ID = re.compile(rb"^X-Genro-Mail-ID:\s*(\S+)", re.MULTILINE | re.IGNORECASE)


class Handler(PipeliningEhlo):
    def __init__(self, out: IO[str], pipelining: bool) -> None:
        self.out = out
        self.offers_pipelining = pipelining

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        found = MAIL_ID.search(envelope.original_content or b"")
        mail_id = found.group(1).decode() if found else "-"
        self.out.write(f"{time.time():.6f} {mail_id}\n")
        self.out.flush()
        return "250 OK"


async def main(port: int, path: str, pipelining: bool) -> None:
    with open(path, "a") as out:
        handler = Handler(out, pipelining)
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SMTP(handler), "127.0.0.1", port)
        print("ready", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], "--pipelining" in sys.argv[3:]))
