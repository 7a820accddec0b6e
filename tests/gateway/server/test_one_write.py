"""uvicorn's h11 writes an HTTP response's head and body apart: OneWriteResponse sends a
Content-Length response in one write (one segment, one wake-up of the client)."""

from __future__ import annotations

from gateway.server.uvicorn import OneWriteResponse


class Recorder:
    """The part of an asyncio transport a response writes to."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return False


HEAD = b"HTTP/1.1 200 \r\ncontent-type: application/json\r\nContent-Length: 2\r\n\r\n"


def test_head_and_body_leave_together() -> None:
    transport = Recorder()
    response = OneWriteResponse(transport)
    response.write(HEAD)
    assert transport.writes == []
    response.write(b"{}")
    response.write(b"")  # h11's end of a Content-Length body
    assert transport.writes == [HEAD + b"{}"]
    assert response.is_closing() is False  # everything else is the transport's


def test_an_empty_body_still_flushes_the_head() -> None:
    transport = Recorder()
    response = OneWriteResponse(transport)
    response.write(HEAD.replace(b"2", b"0"))
    response.write(b"")  # HEAD, 204, an empty JSON answer
    assert transport.writes == [HEAD.replace(b"2", b"0")]


def test_a_streamed_response_is_written_as_it_comes() -> None:
    transport = Recorder()
    response = OneWriteResponse(transport)
    head = b"HTTP/1.1 200 \r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    response.write(head)
    response.write(b"6\r\n: ok\n\n\r\n")
    assert transport.writes == [head, b"6\r\n: ok\n\n\r\n"]
