"""An SMTP sink for postdesk's integration tests (an aiosmtpd handler).

Run:  python -m aiosmtpd -n -l 127.0.0.1:PORT -c smtp_sink.DirSink SPOOL   (with this
directory on PYTHONPATH).

Every accepted message is kept exactly as received (the bytes after DATA) under
SPOOL/<recipient domain>/NNNN.eml, with NNNN.json beside it (envelope sender and
recipients). Tests give each case a recipient domain of its own, so they share one sink
without seeing each other's mail.

Started with --tlscert/--tlskey (STARTTLS) it offers AUTH PLAIN once TLS is on, and accepts
only the user "postdesk" with the password "sink-password" (a test credential); with
--smtpscert/--smtpskey it speaks implicit TLS. NNNN.json says whether TLS and AUTH were used.

A test steers the sink with SPOOL/<domain>/control.json:
  {"tempfail_until": <unix time>}   answer 451 to every RCPT of that domain until then
  {"reject": ["a@domain", ...]}     answer 550 to RCPT of these addresses
  {"stall_until": <unix time>}      answer RCPT of that domain only then (a hung server)
"""

import asyncio
import base64
import json
import os
import time

from aiosmtpd.smtp import MISSING, AuthResult

USER = b"postdesk"
PASSWORD = b"sink-password"


class DirSink:
    def __init__(self, spool):
        self.spool = spool
        self.count = 0
        os.makedirs(spool, exist_ok=True)

    @classmethod
    def from_cli(cls, parser, *args):
        if len(args) != 1:
            parser.error("DirSink needs the spool directory")
        return cls(args[0])

    def _control(self, domain):
        path = os.path.join(self.spool, domain, "control.json")
        try:
            with open(path, encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    @staticmethod
    def _domain(address):
        domain = address.rsplit("@", 1)[-1].lower()
        # Only a plain host name becomes a directory name.
        if not domain or not all(c.isalnum() or c in "-." for c in domain) or domain.startswith("."):
            return "_other"
        return domain

    async def auth_PLAIN(self, server, args):
        try:
            if len(args) > 1:
                response = base64.b64decode(args[1], validate=True)
            else:
                response = await server.challenge_auth("")
                if response is MISSING:
                    return AuthResult(success=False, handled=False)
            _authzid, user, password = response.split(b"\0")
        except ValueError:
            return AuthResult(success=False, handled=False)
        ok = user == USER and password == PASSWORD
        return AuthResult(success=ok, handled=False, auth_data=user.decode(errors="replace"))

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        control = self._control(self._domain(address))
        stall = control.get("stall_until", 0) - time.time()
        if stall > 0:
            await asyncio.sleep(stall)
        if control.get("tempfail_until", 0) > time.time():
            return "451 4.3.0 Try again later (test sink)"
        if address.lower() in [a.lower() for a in control.get("reject", [])]:
            return "550 5.1.1 No such user (test sink)"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        domains = sorted({self._domain(a) for a in envelope.rcpt_tos})
        for domain in domains:
            folder = os.path.join(self.spool, domain)
            os.makedirs(folder, exist_ok=True)
            self.count += 1
            name = "%019d-%06d" % (time.time_ns(), self.count)
            meta = {
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
                "size": len(envelope.original_content),
                "tls": bool(session.ssl) or server.transport.get_extra_info("sslcontext") is not None,
                "auth": bool(session.authenticated),
            }
            for ext, data in ((".json", json.dumps(meta).encode()), (".eml", envelope.original_content)):
                tmp = os.path.join(folder, "." + name + ext + ".tmp")
                with open(tmp, "wb") as f:
                    f.write(data)
                os.rename(tmp, os.path.join(folder, name + ext))
        return "250 2.0.0 Kept"
