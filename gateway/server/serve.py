"""Runs the ASGI app under uvicorn or daphne with the gateway's policy and a graceful SIGTERM.

The ASGI server is a setting, not an architecture (design/performance.md):
``WINGMAN_ASGI_SERVER`` / ``--server`` / ``gateway.asgiServer`` picks ``uvicorn`` (the
default: same fan-out, ~24 MB smaller, see README "Benchmark") or ``daphne``. Both keep the
same guarantees:

- the application may close with any valid code (1008, 1009, 1012, 4029, 4408, ...), and a
  frame over ``maxPayload`` gets a 1009 close frame, not a dropped TCP connection;
- WebSocket pings every ``pingIntervalMs``; a peer that does not answer within
  ``pingTimeoutMs`` is dropped (and its presence removed by the consumer);
- SIGTERM/SIGINT are handled here, not by the server: stop listening, send ``shutdown``,
  close clients with 1012, then stop (design/reliability.md #1, #3). A second signal stops
  at once;
- one ``Wingman gateway listening on ws://HOST:PORT/`` line with the bound port (also for
  ``--port 0``), and the PID file when asked;
- writes never wait for a slow reader: one socket must not stall the hub's fan-out. Instead
  a socket whose unread bytes pass ``maxBufferedBytes`` loses its droppable events and is
  then closed 4008, and dropped if it still reads nothing (gateway/ws/connection.py; the
  socket's write buffer is read through the scope: a FrameWriter on uvicorn, a
  TwistedSocket on daphne);
- a client cannot queue frames faster than the application takes them: uvicorn stops
  reading a socket until its last frame was taken, daphne while ``INBOUND_QUEUE_HIGH`` of
  its frames wait (server/daphne.py). So a flood meets the rate limit (close 4029) at once
  instead of after every frame already read, and cannot grow the process;
- writes are not held back by the kernel either: every accepted socket has TCP_NODELAY
  (without it Nagle + the peer's delayed ACK batch a fast stream of small frames into
  ~64 KB bursts every ~10 ms on loopback);
- instead the gateway bounds the batching itself (uvicorn): frames go to the socket through
  a :class:`~gateway.ws.writer.FrameWriter`, which writes a frame at once when the socket was
  quiet for ``writeCoalesceUs`` and otherwise joins the frames of that window into one
  write (an agent streaming thousands of tokens a second pays one ``send`` per window, not
  per token); replies to requests are never held (they leave at once, after what is queued).
"""

from __future__ import annotations

from pathlib import Path


def serve(*, host: str, port: int, pid_file: Path | None = None, server: str | None = None) -> int:
    """Serve until SIGTERM/SIGINT; returns the exit code."""
    from django.conf import settings

    name = server or settings.WINGMAN.asgi_server
    if name == "daphne":
        from gateway.server import daphne

        return daphne.serve(host=host, port=port, pid_file=pid_file)
    from gateway.server import uvicorn

    return uvicorn.serve(host=host, port=port, pid_file=pid_file)
