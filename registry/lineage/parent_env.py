"""The caller's parent run, as the OpenLineage integrations pass it to a job through the environment.

Airflow's ``lineage_parent_id`` macro and the Spark integration hand a child job
``OPENLINEAGE_PARENT_ID`` (``NAMESPACE/NAME/RUN_ID``); dbt and others set ``OPENLINEAGE_PARENT_RUN_ID``
with ``OPENLINEAGE_PARENT_JOB_NAMESPACE`` and ``OPENLINEAGE_PARENT_JOB_NAME``. A training read that
finds either links its run under that parent, so the scheduler's lineage reaches the snapshot.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from registry.errors import InvalidInput
from registry.lineage.events import JobRef, ParentRef, check_run_id

__all__ = ["parent_from_env"]


def parent_from_env(environ: Mapping[str, str] | None = None) -> ParentRef | None:
    """The parent run the environment names, or None.

    Raises:
        InvalidInput: a variable is set but malformed (named in the message).
    """
    env = os.environ if environ is None else environ
    if whole := env.get("OPENLINEAGE_PARENT_ID", "").strip():
        try:
            return ParentRef.parse(whole)
        except InvalidInput as exc:
            raise InvalidInput(f"OPENLINEAGE_PARENT_ID: {exc}") from exc
    run_id = env.get("OPENLINEAGE_PARENT_RUN_ID", "").strip()
    if not run_id:
        return None
    namespace = env.get("OPENLINEAGE_PARENT_JOB_NAMESPACE", "").strip()
    name = env.get("OPENLINEAGE_PARENT_JOB_NAME", "").strip()
    if not namespace or not name:
        raise InvalidInput("OPENLINEAGE_PARENT_RUN_ID is set without OPENLINEAGE_PARENT_JOB_NAMESPACE and "
                           "OPENLINEAGE_PARENT_JOB_NAME; set all three, or OPENLINEAGE_PARENT_ID")
    return ParentRef(JobRef(namespace, name), check_run_id(run_id, "OPENLINEAGE_PARENT_RUN_ID"))
