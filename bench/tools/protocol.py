"""The smallest spalloc (v1) protocol client, shared by the benchmark tools: one JSON request
per line, replies and notifications back as JSON lines. Standard library only."""
import json
import socket


class Connection:
    def __init__(self, host, port, timeout=60.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        self.notifications = []

    def _line(self):
        while b"\n" not in self.buffer:
            data = self.sock.recv(1 << 16)
            if not data:
                raise ConnectionError("the server closed the connection")
            self.buffer += data
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def call(self, command, *args, **kwargs):
        """Sends one request and returns its result; raises RuntimeError on an exception reply."""
        request = {"command": command, "args": list(args), "kwargs": kwargs}
        self.sock.sendall(json.dumps(request).encode() + b"\n")
        while True:
            message = self._line()
            if "return" in message:
                return message["return"]
            if "exception" in message:
                raise RuntimeError("%s: %s" % (command, message["exception"]))
            self.notifications.append(message)

    def close(self):
        self.sock.close()
