"""Capped output capture: keep the head and tail of a stream within a byte budget."""

from __future__ import annotations


class OutputCapture:
    """Keeps the head and tail of a byte stream within a fixed budget.

    The tail matters as much as the head: tracebacks are at the end.

    Args:
        cap: Bytes to keep in all; three quarters go to the head, one quarter to the tail.

    Attributes:
        head: The first bytes seen, up to the head budget.
        tail: The last bytes seen after the head filled, up to the tail budget.
        total: Bytes seen in all.
    """

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.head_cap = cap - cap // 4
        self.tail_cap = cap // 4
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def feed(self, data: bytes) -> None:
        """Account for a chunk of output, keeping only the budgeted bytes.

        Args:
            data: The next chunk of the stream.
        """
        self.total += len(data)
        room = self.head_cap - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data and self.tail_cap > 0:
            self.tail += data
            if len(self.tail) > self.tail_cap:
                del self.tail[: len(self.tail) - self.tail_cap]

    @property
    def dropped(self) -> int:
        """Bytes seen but not kept."""
        return self.total - len(self.head) - len(self.tail)

    def text(self) -> str:
        """The kept output, with a ``...[truncated N bytes]...`` marker where bytes were dropped.

        Returns:
            The head and tail decoded as UTF-8 (undecodable bytes replaced).
        """
        head = self.head.decode("utf-8", errors="replace")
        if self.dropped == 0:
            return head + self.tail.decode("utf-8", errors="replace")
        tail = self.tail.decode("utf-8", errors="replace")
        return f"{head}\n...[truncated {self.dropped} bytes]...\n{tail}"


def truncate_text(text: str, cap: int) -> str:
    """Cap ``text`` at about ``cap`` UTF-8 bytes with the sandbox's truncation marker.

    Args:
        text: The text to cap.
        cap: Bytes to keep (head and tail together).

    Returns:
        ``text`` itself if it fits, else its head and tail around the marker.
    """
    capture = OutputCapture(cap)
    capture.feed(text.encode("utf-8"))
    return capture.text()
