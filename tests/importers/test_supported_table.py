"""docs/supported_ops.md is generated from the op table and the importers: it must be current,
and every op it lists as lowered must really have a lowering rule."""
from lowering.importers import supported_table


def test_supported_ops_doc_is_current():
    assert supported_table.DOC.read_text() == supported_table.render(), \
        "docs/supported_ops.md is stale: run python -m lowering.importers.supported_table --write"


def test_new_exporter_ops_are_declared():
    rows = {r[0] or r[1]: r for r in supported_table.rows()}
    for hlo in ("batch-norm-inference", "batch-norm-training", "erf", "tan", "atan2", "sort"):
        assert rows[hlo][3] == "yes", rows[hlo]
    assert "| `mhlo.erf` | graph op `erf` |" in supported_table.render()
