"""The file protocol pyarrow needs from a sink it only writes to, in one place."""

from __future__ import annotations

__all__ = ["WriteOnlyFile"]


class WriteOnlyFile:
    """A non-seekable, write-only file object: subclasses store the bytes in :meth:`_store`;
    :meth:`write` counts them so ``tell`` works without seeking (pyarrow asks for it)."""

    def __init__(self) -> None:
        self.size = 0
        self.closed = False

    def _store(self, data: bytes | bytearray | memoryview) -> int:
        raise NotImplementedError

    def write(self, data: bytes | bytearray | memoryview) -> int:
        written = self._store(data)
        self.size += written
        return written

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readable(self) -> bool:
        return False
