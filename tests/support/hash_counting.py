"""Code for a fresh Python process that counts the files it hashes (every verified read hashes through
``hashlib.file_digest``): prepend :data:`COUNT_HASHES` to a ``python -c`` script, which then finds the
names of the hashed files in the list ``hashed``."""

COUNT_HASHES = """
import hashlib
from pathlib import Path
hashed = []
_real_file_digest = hashlib.file_digest
def _counting(fh, digest):
    hashed.append(Path(fh.name).name)
    return _real_file_digest(fh, digest)
hashlib.file_digest = _counting
"""
