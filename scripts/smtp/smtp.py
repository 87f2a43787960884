"""The test SMTP server (PyPI aiosmtpd, installed by scripts/ensure-tools.sh into .venv here).

Listens on 127.0.0.1 at SMTP_PORT (0: any free port) and prints one JSON line per event on
stdout: first {"port": N}, then for every mail accepted {"mail_from", "rcpt_tos", "data"} with
the message exactly as it arrived. SMTP_REFUSE=1 answers every RCPT with a temporary failure
(451), like a server that refuses mail for a while. Stops on SIGTERM or when stdin closes.
"""

import asyncio
import json
import os
import sys

from aiosmtpd.smtp import SMTP


class Handler:
    def __init__(self, refuse):
        self.refuse = refuse

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse:
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        print(
            json.dumps(
                {
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": envelope.rcpt_tos,
                    "data": envelope.original_content.decode("utf-8", "replace"),
                }
            ),
            flush=True,
        )
        return "250 Message accepted for delivery"


async def main():
    loop = asyncio.get_running_loop()
    handler = Handler(os.environ.get("SMTP_REFUSE") == "1")
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="smtp.test", decode_data=False),
        host="127.0.0.1",
        port=int(os.environ.get("SMTP_PORT", "0")),
        reuse_address=True,
    )
    port = server.sockets[0].getsockname()[1]
    print(json.dumps({"port": port}), flush=True)
    # The test holds stdin open; when it exits (or drops the handle) the server goes too.
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
