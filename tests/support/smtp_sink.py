"""A tiny threaded SMTP server on loopback that keeps what it receives.

Enough SMTP for the sending engine (EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT), with
one hook to answer chosen recipients with a chosen code, so the SMTP path is tested
over a real socket without Postfix.
"""

import socketserver
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes

    def message(self) -> EmailMessage:
        return message_from_bytes(self.data, policy=policy.SMTP)


@dataclass
class SinkState:
    received: list[Received] = field(default_factory=list)
    # Address -> (code, text) answered to its RCPT TO.
    rcpt_replies: dict[str, tuple[int, str]] = field(default_factory=dict)
    # Every address given in a RCPT TO, accepted or not, in order.
    rcpt_seen: list[str] = field(default_factory=list)
    # When set, EHLO offers AUTH PLAIN and every AUTH is answered with this (code, text).
    auth_reply: tuple[int, str] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(socketserver.StreamRequestHandler):
    server: "SmtpSink"

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        state = self.server.state
        self.reply("220 sink ESMTP")
        sender = ""
        recipients: list[str] = []
        while line := self.rfile.readline():
            command = line.decode("ascii", "replace").strip()
            verb = command[:4].upper()
            if verb in ("EHLO", "HELO"):
                auth = b"250-AUTH PLAIN\r\n" if state.auth_reply else b""
                self.wfile.write(b"250-sink\r\n" + auth + b"250 8BITMIME\r\n")
            elif verb == "AUTH" and state.auth_reply:
                self.reply(f"{state.auth_reply[0]} {state.auth_reply[1]}")
            elif verb == "MAIL":
                sender, recipients = command[10:].strip("<>"), []
                self.reply("250 OK")
            elif verb == "RCPT":
                address = command[8:].strip().strip("<>")
                code, text = state.rcpt_replies.get(address, (250, "OK"))
                with state.lock:
                    state.rcpt_seen.append(address)
                if code == 250:
                    recipients.append(address)
                self.reply(f"{code} {text}")
            elif verb == "DATA":
                self.reply("354 go ahead")
                data = self._read_data()
                with state.lock:
                    state.received.append(Received(sender, recipients, data))
                self.reply("250 queued")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:  # RSET, NOOP
                sender, recipients = "", []
                self.reply("250 OK")

    def _read_data(self) -> bytes:
        lines = []
        while (line := self.rfile.readline()) not in (b".\r\n", b""):
            lines.append(line[1:] if line.startswith(b"..") else line)
        return b"".join(lines)


class SmtpSink(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = SinkState()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.server_address[1]

    def __enter__(self) -> "SmtpSink":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
