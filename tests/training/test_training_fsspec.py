"""The ``registry://`` fsspec view: pandas, polars, DuckDB and ``datasets`` read exactly a snapshot's
rows (after upserts and deletes) through the URL, locally and from a server; ``?training=1`` is
gated and audited; bad URLs are clear errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from registry import Registry
from registry.context import create_home
from registry.errors import GateBlocked, InvalidInput
from tests.support.training_support import BLOCKING, churned, need

fsspec = need("fsspec")
URL = "registry://churn@main/data.parquet"


@pytest.fixture
def local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Registry, pa.Table]]:
    """A home with the churned dataset, named by REGISTRY_HOME as a user's shell would."""
    monkeypatch.delenv("REGISTRY_DATABASE_URL", raising=False)
    monkeypatch.delenv("REGISTRY_STORAGE_URL", raising=False)
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    home = create_home(tmp_path / "home").home
    monkeypatch.setenv("REGISTRY_HOME", str(home))
    fsspec.config.conf.clear()
    with Registry.open(home) as reg:
        yield reg, churned(reg)


def _same(got: pa.Table, expected: pa.Table) -> None:
    assert got.num_rows == expected.num_rows
    # pandas and polars hand strings back as large_string: compare values, not string widths
    assert got.select(expected.column_names).cast(expected.schema).sort_by("idx").equals(expected.sort_by("idx"))


def test_pandas_polars_duckdb_and_datasets_read_exactly_the_snapshot(local: tuple[Registry, pa.Table],
                                                                       tmp_path: Path) -> None:
    reg, expected = local
    pd, pl, duckdb, datasets = need("pandas"), need("polars"), need("duckdb"), need("datasets")
    _same(pa.Table.from_pandas(pd.read_parquet(URL), preserve_index=False), expected)
    _same(pl.read_parquet(URL, use_pyarrow=True).to_arrow(), expected)
    con = duckdb.connect()
    con.register_filesystem(fsspec.filesystem("registry"))
    _same(con.sql(f"SELECT * FROM read_parquet('{URL}')").to_arrow_table(), expected)
    assert con.sql(f"SELECT count(*), count(DISTINCT idx) FROM read_parquet('{URL}')").fetchall() == [
        (expected.num_rows, expected.num_rows)]
    loaded = datasets.load_dataset("parquet", data_files=URL, split="train", cache_dir=str(tmp_path / "hf"))
    _same(loaded.data.table, expected)

    first = reg.log("churn")[-1].id  # an older snapshot: before the upserts and deletes
    older = pd.read_parquet(f"registry://churn@{first}/data.parquet")
    assert len(older) == 3000 and older["value"].tolist() == [float(i) for i in range(3000)]


def test_the_view_is_written_once_and_verified(local: tuple[Registry, pa.Table]) -> None:
    reg, expected = local
    fs = fsspec.filesystem("registry")
    assert fs.ls("churn@main", detail=False) == ["churn@main/data.parquet"]
    path = Path(fs.local_path(URL))
    assert path.name == f"{reg.show('churn').id}.parquet" and expected.num_rows
    stamp = path.stat().st_mtime_ns
    assert fsspec.filesystem("registry", skip_instance_cache=True).local_path(URL) == str(path)
    assert path.stat().st_mtime_ns == stamp  # the second reader reused the view
    assert fs.info(URL)["size"] == path.stat().st_size and fs.ukey(URL) == reg.show("churn").id

    reg.commit("churn", None, mode="upsert", delete_keys=pa.table({"idx": pa.array([0, 1, 2], pa.int64())}))
    with fs.open(URL) as fh:  # the same filesystem follows the branch
        import pyarrow.parquet as pq

        moved = pq.read_table(fh)
    assert moved.num_rows == expected.num_rows - 3 and 0 not in moved.column("idx").to_pylist()


def test_training_reads_are_gated_and_audited(local: tuple[Registry, pa.Table]) -> None:
    reg, expected = local
    pd = need("pandas")
    assert len(pd.read_parquet(URL + "?training=1&job=nightly")) == expected.num_rows
    reads = reg.audit_log(action="read.training")
    assert len(reads) == 1 and reads[0].details["job"] == "nightly"
    reg.set_policy("churn", BLOCKING)
    reg.qa_run("churn")
    with pytest.raises(GateBlocked, match="huge"):
        fsspec.filesystem("registry", skip_instance_cache=True).open(URL + "?training=1").read()
    assert len(reg.audit_log(action="gate.refuse")) == 1


def test_bad_urls_are_clear_errors(local: tuple[Registry, pa.Table]) -> None:
    fs = fsspec.filesystem("registry")
    with pytest.raises(FileNotFoundError, match="nothing"):
        fs.info("registry://nothing@main/data.parquet")
    with pytest.raises(FileNotFoundError, match="only data.parquet"):
        fs.open("registry://churn@main/other.csv")
    with pytest.raises(InvalidInput, match="unknown option"):
        fs.open(URL + "?trianing=1")
    with pytest.raises(InvalidInput, match="read-only"):
        fs.open(URL, "wb")
    with pytest.raises(InvalidInput, match="expected registry://NAME@REF"):
        fs.info("registry://churn@main/a/b")


def test_against_a_server(local: tuple[Registry, pa.Table], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from registry.api.app import create_app
    from registry.auth.tokens import create_token
    from tests.support.api_support import serve

    reg, expected = local
    pd = need("pandas")
    secret, _ = create_token(reg.ctx, "trainer", "reader", [], actor="setup")
    monkeypatch.setenv("REGISTRY_TOKEN", secret)
    monkeypatch.setenv("REGISTRY_CLIENT_CACHE", str(tmp_path / "client" / "objects"))
    with serve(create_app(reg.home)) as url:
        remote = f"registry+{url}/churn@main/data.parquet"
        _same(pa.Table.from_pandas(pd.read_parquet(remote), preserve_index=False), expected)
        assert len(pd.read_parquet(remote + "?training=1&job=remote")) == expected.num_rows
        assert [r.actor for r in reg.audit_log(action="read.training")] == ["trainer"]
        monkeypatch.setenv("REGISTRY_TOKEN", "wrong")
        import registry_client

        with pytest.raises(registry_client.Unauthenticated):
            fsspec.filesystem("registry+http", skip_instance_cache=True).open(remote)
