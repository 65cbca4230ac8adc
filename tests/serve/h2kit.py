"""A raw HTTP/2 client (zttp's client role over a plain socket) for gRPC framing cases that grpcio's client never
sends: a compressed flag without an encoding, a truncated frame, a wrong content-type, no `te: trailers`."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

import zttp

INFER = "/inference.GRPCInferenceService/ModelInfer"


@dataclass
class Answer:
    """What came back on one stream: HTTP status, headers, body bytes, trailers (empty when none came)."""

    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    trailers: dict[str, str] = field(default_factory=dict)
    reset: bool = False

    @property
    def grpc_status(self) -> int | None:
        """grpc-status from the trailers, or from the headers of a Trailers-Only answer."""
        got = self.trailers.get("grpc-status", self.headers.get("grpc-status"))
        return None if got is None else int(got)

    @property
    def grpc_message(self) -> str:
        """grpc-message (percent-decoded) from the trailers or a Trailers-Only answer's headers."""
        from urllib.parse import unquote

        return unquote(self.trailers.get("grpc-message", self.headers.get("grpc-message", "")))


def frame(message: bytes, compressed: int = 0) -> bytes:
    """A gRPC length-prefixed message."""
    return bytes([compressed]) + len(message).to_bytes(4, "big") + message


def call(
    port: int,
    body: bytes,
    path: str = INFER,
    headers: list[tuple[bytes, bytes]] | None = None,
    timeout: float = 30.0,
) -> Answer:
    """One POST on a new HTTP/2 (h2c prior knowledge) connection; the answer of its stream."""
    if headers is None:
        headers = [(b"content-type", b"application/grpc"), (b"te", b"trailers")]
    conn = zttp.Connection(zttp.CLIENT, protocol=zttp.HTTP2)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        conn.initiate_connection()
        stream = conn.send_request(b"POST", path.encode(), b"2", [(b"host", b"127.0.0.1"), *headers])
        if body:
            stream.send_data(body)
        stream.end_message()
        sock.sendall(conn.data_to_send())
        ans, parts, head_done = Answer(), [], False
        while True:
            data = sock.recv(1 << 16)
            if not data:
                break
            conn.receive_data(data)
            done = False
            while (ev := conn.next_event()) is not zttp.NEED_DATA:
                if isinstance(ev, zttp.Response) and ev.stream_id == stream.stream_id and not head_done:
                    head_done = True
                    ans.status = ev.status_code
                    ans.headers = {k.decode().lower(): v.decode() for k, v in ev.headers}
                elif isinstance(ev, zttp.Data) and ev.stream_id == stream.stream_id:
                    parts.append(bytes(ev.data))
                elif isinstance(ev, zttp.EndOfMessage) and ev.stream_id == stream.stream_id:
                    ans.trailers = {k.decode().lower(): v.decode() for k, v in (ev.trailers or ())}
                    done = True
                elif isinstance(ev, zttp.RstStream) and ev.stream_id == stream.stream_id:
                    ans.reset = done = True
                elif isinstance(ev, (zttp.GoAway, zttp.ConnectionClosed)):
                    done = True
            out = conn.data_to_send()
            if out:
                sock.sendall(out)
            if done:
                break
        ans.body = b"".join(parts)
        return ans


def calls_on_one_connection(
    port: int, body: bytes, n: int, extra: list[tuple[bytes, bytes]] | None = None, timeout: float = 60.0
) -> tuple[int, int | None]:
    """Up to `n` ModelInfer calls one after another on one connection: (calls answered grpc-status 0, the error
    code of the GOAWAY that ended the connection, or None)."""
    conn = zttp.Connection(zttp.CLIENT, protocol=zttp.HTTP2)
    ok, goaway = 0, None
    hdrs = [(b"host", b"127.0.0.1"), (b"content-type", b"application/grpc"), (b"te", b"trailers"), *(extra or [])]
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        conn.initiate_connection()
        for _ in range(n):
            if goaway is not None:
                break
            stream = conn.send_request(b"POST", INFER.encode(), b"2", hdrs)
            stream.send_data(body)
            stream.end_message()
            sock.sendall(conn.data_to_send())
            done = False
            while not done:
                data = sock.recv(1 << 16)
                if not data:
                    return ok, goaway
                conn.receive_data(data)
                while (ev := conn.next_event()) is not zttp.NEED_DATA:
                    if isinstance(ev, zttp.EndOfMessage) and ev.stream_id == stream.stream_id:
                        ok += dict(ev.trailers or ()).get(b"grpc-status") == b"0"
                        done = True
                    elif isinstance(ev, zttp.RstStream) and ev.stream_id == stream.stream_id:
                        done = True
                    elif isinstance(ev, zttp.GoAway):
                        goaway = ev.error_code
                out = conn.data_to_send()
                if out:
                    sock.sendall(out)
    return ok, goaway
