"""The test SMTP server (PyPI aiosmtpd, installed by scripts/ensure-tools.sh into .venv here).

Listens on 127.0.0.1 at SMTP_PORT (0: any free port) and prints one JSON line per event on
stdout: first {"port": N}, then for every mail accepted {"mail_from", "rcpt_tos", "data"} with
the message exactly as it arrived. SMTP_REFUSE=1 answers every RCPT with a temporary failure
(451), like a server that refuses mail for a while. Stops on SIGTERM or when stdin closes.

SMTP_SPOOL=DIR (the Playwright harness, scripts/with-smtp.sh) also writes each mail to DIR as
NNNNNN.json, and then runs until SIGTERM whatever stdin does.
"""

import asyncio
import json
import os
import sys

from aiosmtpd.smtp import SMTP


class Handler:
    def __init__(self, refuse, spool):
        self.refuse = refuse
        self.spool = spool
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse:
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        mail = json.dumps(
            {
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
                "data": envelope.original_content.decode("utf-8", "replace"),
            }
        )
        print(mail, flush=True)
        if self.spool:
            self.count += 1
            path = os.path.join(self.spool, f"{self.count:06d}.json")
            # Written whole, then renamed: a reader never sees half a mail.
            with open(path + ".tmp", "w", encoding="utf-8") as file:
                file.write(mail)
            os.replace(path + ".tmp", path)
        return "250 Message accepted for delivery"


async def main():
    loop = asyncio.get_running_loop()
    spool = os.environ.get("SMTP_SPOOL") or None
    handler = Handler(os.environ.get("SMTP_REFUSE") == "1", spool)
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="smtp.test", decode_data=False),
        host="127.0.0.1",
        port=int(os.environ.get("SMTP_PORT", "0")),
        reuse_address=True,
    )
    port = server.sockets[0].getsockname()[1]
    print(json.dumps({"port": port}), flush=True)
    if spool:
        await asyncio.Event().wait()
    # The test holds stdin open; when it exits (or drops the handle) the server goes too.
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
