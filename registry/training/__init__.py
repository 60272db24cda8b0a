"""Training-native reads: one gate check per job, then a scan plan that any number of workers, ranks
or machines read in parallel, each verifying the objects it reads (docs/training.md).

- :mod:`~registry.training.admission`: the gated, audited start of a job; where its objects are;
- :mod:`~registry.training.sources`: admitting against a local registry or a ``registry_client.Client``;
- :mod:`~registry.training.consumers`: cutting a plan across ranks and DataLoader workers, per-epoch shuffle;
- :mod:`~registry.training.view`: a snapshot as one flat Parquet file;
- :mod:`~registry.training.torch`: ``SnapshotDataset`` (the ``[torch]`` extra);
- :mod:`~registry.training.hf`: ``to_hf_dataset`` / ``to_hf_iterable`` (``[hf]``);
- :mod:`~registry.training.filesystem`: the ``registry://`` fsspec filesystem (``[fsspec]``);
- :mod:`~registry.training.ray`: ``read_snapshot``, a Ray Data datasource (``[ray]``);
- :mod:`~registry.training.export`: COCO, YOLO and Hugging Face exports.

Pins, lockfiles and whole-table training loads stay where they were, in
:mod:`registry.training.pins` and :mod:`registry.training.lockfile`.
"""
