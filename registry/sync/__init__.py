"""Live sync from a running Label Studio: its REST client, the per-dataset resume point, the sync that
turns changed tasks into one snapshot, webhook coalescing and requeue of hard examples.
See ``docs/labeling-loop.md``. Import the submodules (``service``, ``hooks``, ``requeue``) directly."""
