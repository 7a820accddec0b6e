"""The listening socket gateway/server/serve.py builds: accepted sockets send each frame at once."""

from __future__ import annotations

import asyncio
import socket

from gateway.server.common import listen, no_delay


async def test_accepted_sockets_have_tcp_nodelay():
    """Without it Nagle + delayed ACKs batch a stream of small frames into ~10 ms bursts."""
    listener = listen("127.0.0.1", 0)
    accepted: asyncio.Future = asyncio.get_running_loop().create_future()

    async def on_client(reader, writer):
        sock = writer.get_extra_info("socket")
        accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(on_client, sock=listener)
    try:
        port = listener.getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(accepted, 5) != 0
        writer.close()
    finally:
        server.close()
        await server.wait_closed()


def test_no_delay_is_set_on_a_plain_tcp_socket_and_ignores_others():
    class Transport:
        def __init__(self, sock):
            self.sock = sock

        def get_extra_info(self, name):
            return self.sock

    a, b = socket.socketpair()  # AF_UNIX: nothing to set, must not raise
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
    try:
        no_delay(Transport(a))
        no_delay(Transport(None))
        assert tcp.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        no_delay(Transport(tcp))
        assert tcp.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        for s in (a, b, tcp):
            s.close()
