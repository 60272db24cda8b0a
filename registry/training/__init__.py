"""Training-native reads: one gate check per job, then a scan plan that any number of workers, ranks
or machines read in parallel, each verifying the objects it reads.

- :mod:`registry.training.admission`: the gated, audited start of a training job (local or API);
- :mod:`registry.training.consumers`: cutting a plan across ranks and workers, per-epoch shuffle;
- :mod:`registry.training.torch`: ``SnapshotDataset`` (needs the ``[torch]`` extra);
- :mod:`registry.training.hf`: ``to_hf_dataset`` / ``to_hf_iterable`` (``[hf]``);
- :mod:`registry.training.filesystem`: the ``registry://`` fsspec filesystem (``[hf]`` or ``fsspec``).

Pins, lockfiles and whole-table training loads stay in :mod:`registry.quality.training` and
:mod:`registry.quality.lockfile`.
"""
