"""A real pair of distinct printable keys whose 64-bit key hashes are equal.

The key hash (``registry.snapshots.hashing``) folds a string 8 bytes at a time through splitmix64: after
the first word the state is ``h1 = mix(h0 ^ w1) + GOLDEN``, and the next step mixes ``h1 ^ w2``. Two
16-byte keys ``A1 A2`` and ``B1 B2`` therefore collide whenever ``B2 = A2 ^ h1(A1) ^ h1(B1)``; choosing
``B1`` until that word is printable takes a few hundred tries (each byte of the difference must be below
0x80). :func:`colliding_keys` finds such a pair deterministically and checks it against the real hash.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from registry.snapshots.hashing import _GOLDEN, _mix, key_hash

PRINTABLE = bytes(range(0x21, 0x7F))


def _after_first_word(word: bytes, length: int = 16) -> int:
    h = _mix(np.array([length], np.uint64) ^ _GOLDEN)
    h = _mix(h ^ np.frombuffer(word, "<u8")) + _GOLDEN
    return int(h[0])


def _printable_partner(word: bytes, difference: int) -> bytes | None:
    """``word`` with each byte moved by XOR so that both are printable, or None."""
    out = bytes(b ^ ((difference >> (8 * i)) & 0xFF) for i, b in enumerate(word))
    return out if all(c in PRINTABLE for c in out) else None


def colliding_keys(prefix: bytes = b"sample-0") -> tuple[str, str, int]:
    """Two distinct 16-character printable keys with one key hash, and the tries it took."""
    h_a = _after_first_word(prefix)
    for tries in range(1, 1 << 20):
        other = b"s%07d" % tries
        difference = h_a ^ _after_first_word(other)
        for tail in (b"00000001", b"aaaaaaaa", b"MMMMMMMM", b"________"):
            partner = _printable_partner(tail, difference)
            if partner is not None:
                a, b = (prefix + tail).decode(), (other + partner).decode()
                hashes = key_hash(pa.table({"k": [a, b]}), ["k"])
                assert a != b and hashes[0] == hashes[1], "the hash definition changed: update this helper"
                return a, b, tries
    raise AssertionError("no colliding pair found")


if __name__ == "__main__":
    print(colliding_keys())
