"""Writing one layer and the manifest that stacks it: the stage a commit and a merge share.

The layer's rows object (with its key-hash index in the local cache), the deleted keys' object, then
the manifest: each written durably (temp file, fsync, rename) before any catalog change (invariant 2).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from registry.context import Context
from registry.snapshots.hashing import key_hash
from registry.snapshots.layer_reader import Lookup, ManifestReader
from registry.snapshots.layers import LayerIndex, alt_metadata, write_parquet_object
from registry.snapshots.manifest import Layer, Manifest, layer_names

__all__ = ["StagedLayer", "stack_manifest", "write_layer"]


@dataclass(frozen=True)
class StagedLayer:
    """The objects of a new snapshot: its layer's rows and deletes, and its manifest."""

    change_sha256: str
    deletes_sha256: str | None
    manifest_sha256: str
    layers: tuple[Layer, ...]
    bytes_written: int


def _no_point(_name: str) -> None:
    return None


def write_layer(ctx: Context, rows: pa.Table, index: Callable[[], LayerIndex], *, keys: list[str],
                metadata: dict[bytes, bytes] | None, removed: np.ndarray, parent: ManifestReader | None,
                below: tuple[Layer, ...],
                schema_fingerprint: str, total_rows: int, point: Callable[[str], None] = _no_point,
                below_hits: Lookup | None = None) -> StagedLayer:
    """Write ``rows`` (file metadata ``metadata``, cached index built by ``index()``) and the keys of the
    ``removed`` ids (read from ``parent``) as one layer on top of ``below``, then the manifest of
    ``total_rows`` rows. The Parquet object is encoded on a second thread while the index is built and
    written (both release the GIL), so a large commit pays for the longer of the two, not their sum.

    ``point`` is called after the rows object (``after-change-object``), after every layer object
    (``after-objects``) and after the manifest (``after-manifest``): the commit's crash points.
    ``below_hits``: per row of ``rows``, where its id is in ``below`` (``parent.lookup`` of the ids), kept
    with the index (:data:`registry.snapshots.layers.BELOW_FILE`) for a diff of the parent and the child.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        written = pool.submit(write_parquet_object, ctx.store, rows, metadata=metadata)
        try:
            built = index()
            staged_index = ctx.cache.stage_rows(built)
        except BaseException:
            written.cancel()
            raise
        try:
            if below_hits is not None and below:
                ctx.cache.stage_below(staged_index, layer_names(below), below_hits.layer, below_hits.position,
                                      below_hits.rh)
            info = written.result()
        except BaseException:
            ctx.cache.discard(staged_index)
            raise
    ctx.cache.adopt_rows(staged_index, info.sha256, built)
    point("after-change-object")
    bytes_written = info.size
    deletes_sha: str | None = None
    if removed.size:
        assert parent is not None
        deleted_rows = parent.fetch(removed, columns=keys)
        deletes = write_parquet_object(ctx.store, deleted_rows,
                                       metadata=alt_metadata(removed, key_hash(deleted_rows, keys)))
        ctx.cache.save_deletes(deletes.sha256, removed)
        deletes_sha = deletes.sha256
        bytes_written += deletes.size
    layer = Layer(rows=info.sha256, rows_count=rows.num_rows, deletes=deletes_sha, deletes_count=int(removed.size))
    return stack_manifest(ctx, layer, below, keys=keys, schema_fingerprint=schema_fingerprint, total_rows=total_rows,
                          bytes_written=bytes_written, point=point)


def stack_manifest(ctx: Context, layer: Layer, below: tuple[Layer, ...], *, keys: list[str], schema_fingerprint: str,
                   total_rows: int, bytes_written: int, point: Callable[[str], None] = _no_point) -> StagedLayer:
    """Write the manifest of ``layer`` (its objects written, ``bytes_written`` bytes) on top of ``below``;
    ``point`` is called before (``after-objects``) and after (``after-manifest``)."""
    manifest = Manifest(key_columns=tuple(keys), schema_fingerprint=schema_fingerprint, rows=total_rows,
                        layers=(*below, layer))
    point("after-objects")
    manifest_info = ctx.store.put_bytes(manifest.to_bytes())
    point("after-manifest")
    return StagedLayer(layer.rows or "", layer.deletes, manifest_info.sha256, manifest.layers,
                       bytes_written + manifest_info.size)
