"""A raw-socket 'parent' for the review of issue 54: each request is answered by
`respond(target, headers, index)`, which returns an iterable of bytes or floats (a float:
sleep that long). The connection is closed afterwards."""

import socket
import threading


class RawParent:
    def __init__(self, respond):
        self.respond = respond
        self.asked = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.port = self.sock.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        self.sock.settimeout(0.2)
        while not self.stopping.is_set():
            try:
                c, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            threading.Thread(target=self.one, args=(c,), daemon=True).start()

    def one(self, c):
        try:
            c.settimeout(30)
            data = b""
            while b"\r\n\r\n" not in data:
                got = c.recv(65536)
                if not got:
                    return
                data += got
            head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
            target = head[0].split(" ")[1]
            headers = {}
            for line in head[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            with self.lock:
                index = len(self.asked)
                self.asked.append((target, headers))
            for piece in self.respond(target, headers, index):
                if self.stopping.is_set():
                    return
                if isinstance(piece, (int, float)):
                    self.stopping.wait(piece)
                else:
                    c.sendall(piece)
        except OSError:
            pass
        finally:
            c.close()

    def stop(self):
        self.stopping.set()
        self.sock.close()


def http_answer(status, headers, body=b"", chunked=False, trailers=None, reason="X"):
    out = [f"HTTP/1.1 {status} {reason}\r\n".encode()]
    for k, v in headers:
        out.append(f"{k}: {v}\r\n".encode("latin-1") if isinstance(v, str) else
                   k.encode() + b": " + v + b"\r\n")
    if chunked:
        out.append(b"Transfer-Encoding: chunked\r\n\r\n")
        if body:
            out.append(b"%x\r\n%s\r\n" % (len(body), body))
        out.append(b"0\r\n" + b"".join(t + b"\r\n" for t in (trailers or [])) + b"\r\n")
    else:
        if not any(k.lower() == "content-length" for k, _ in headers):
            out.append(f"Content-Length: {len(body)}\r\n".encode())
        out.append(b"Connection: close\r\n\r\n")
        out.append(body)
    return [b"".join(out)]
