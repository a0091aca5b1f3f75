"""Start-up: ``import oocml`` imports no heavy library, and ``.ml`` is registered whatever the
order of imports (structure only: the times are measured by benchmarks/startup.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ["sklearn", "skops", "scipy", "dask", "pandas", "pyarrow", "distributed"]


def _run(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_import_oocml_imports_no_heavy_library():
    out = _run("import sys, oocml; print(sorted(m for m in %r if m in sys.modules))" % HEAVY)
    assert out.strip() == "[]"


@pytest.mark.parametrize("order", ["oocml first", "dask first", "pandas only"])
def test_the_accessor_is_there_whatever_the_order_of_imports(order):
    imports = {"oocml first": "import oocml\nimport dask.dataframe as dd\nimport pandas as pd",
               "dask first": "import dask.dataframe as dd\nimport pandas as pd\nimport oocml",
               "pandas only": "import oocml\nimport pandas as pd"}[order]
    code = imports + """
frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [0, 1, 0, 1]})
assert type(frame.ml).__name__ == "MLAccessor"
if "dask.dataframe" in globals() or "dd" in globals():
    assert type(dd.from_pandas(frame, npartitions=2).ml).__name__ == "MLAccessor"
model = frame.ml.scale().fit_incremental("sgd", target="y")
print(type(model).__name__)
"""
    assert _run(code).strip() == "Model"


def test_lazy_names_are_the_real_ones():
    import oocml
    from oocml.model import Model, load_model
    from oocml.session import Session, sql

    assert (oocml.Model, oocml.load_model, oocml.Session, oocml.sql) == (Model, load_model,
                                                                         Session, sql)
    assert set(oocml.__all__) <= set(dir(oocml))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        oocml.nope  # noqa: B018


def test_a_fit_on_this_machine_does_not_import_distributed(tmp_path):
    """No client can exist unless distributed was imported; dask imports it (0.4 s) only to find
    none, so oocml's passes name the threaded scheduler instead: a local fit, its score and a
    SQL statement leave it unimported (a scheduler named in dask's config is dask's to find)."""
    code = f"""
import sys, dask.dataframe as dd, pandas as pd, oocml
frame = pd.DataFrame({{"x": [float(i) for i in range(200)], "y": [i % 2 for i in range(200)]}})
frame.to_parquet({str(tmp_path / "d.parquet")!r})
ddf = dd.read_parquet({str(tmp_path)!r})
model = ddf.ml.scale().fit_incremental("sgd", target="y")
model.score(ddf)
oocml.sql("TRAIN naive_bayes ON '{tmp_path}' PREDICT y")
print("distributed" in sys.modules)
"""
    assert _run(code).strip() == "False"
