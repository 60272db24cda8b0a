"""Every catalog table on ``SQLModel.metadata``: alembic's environment and the migration test import this.

The tables live with the packages that own them (``registry.models`` the core ones, each domain
package its own ``models``), so that no low layer imports a higher one just to register its tables;
this module, at the top of the stack, gathers them all.
"""

from __future__ import annotations

from sqlmodel import SQLModel

from registry import branch_models, models
from registry.audit import models as audit_models
from registry.auth import models as auth_models
from registry.lineage import models as lineage_models
from registry.quality import models as quality_models
from registry.sync import models as sync_models

__all__ = ["TABLE_MODULES", "metadata"]

TABLE_MODULES = (models, branch_models, audit_models, auth_models, lineage_models, quality_models, sync_models)
"""The modules that define catalog tables (importing them registers the tables)."""

metadata = SQLModel.metadata
"""The metadata holding every table once this module is imported."""
