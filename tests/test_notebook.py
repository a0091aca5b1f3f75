"""examples/quickstart.ipynb runs in a real Jupyter kernel (nbclient + ipykernel), and what a
notebook user sees is there: the HTML of the chain and the model, the progress line updated
in place (one output, not a growing block), whole counts, and each plot once, as a PNG."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "quickstart.ipynb"


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """The notebook, run top to bottom in a fresh kernel in a temporary folder; any cell that
    raises fails every test here (nbclient stops on the first error)."""
    folder = tmp_path_factory.mktemp("notebook")
    shutil.copy(NOTEBOOK, folder)
    notebook = nbformat.read(folder / NOTEBOOK.name, as_version=4)
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(folder)}}).execute()
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def _cell(cells, starts: str):
    return next(c for c in cells if c.source.startswith(starts))


def _data(cell, mime: str) -> list[str]:
    return [o["data"][mime] for o in cell.outputs if mime in o.get("data", {})]


def test_no_cell_errored_and_every_cell_ran(executed):
    assert all(c.execution_count is not None for c in executed)
    assert not [o for c in executed for o in c.outputs if o.output_type == "error"]


def test_the_chain_and_the_model_show_as_html(executed):
    (chain,) = _data(_cell(executed, "chain = "), "text/html")
    assert "oocml.Chain" in chain and "<th>partitions</th><td>8</td>" in chain
    assert "scale standard" in chain and "statistics pass" in chain
    (model,) = _data(_cell(executed, "model = "), "text/html")
    for words in ("oocml.Model", "SGDClassifier", "Learning curve", "<svg", "holdout score",
                  "rows seen", "Fitted pipeline", "StandardScaler"):
        assert words in model, words
    (history,) = _data(_cell(executed, "session = "), "text/html")
    assert "holdout_score" in history  # SHOW HISTORY: the epochs as a table


def test_progress_is_one_line_updated_in_place(executed):
    cell = _cell(executed, "model = ")
    lines = [o for o in cell.outputs if o.output_type == "display_data"]
    texts = [o["data"]["text/plain"] for o in lines]
    assert any(t.startswith("statistics [") for t in texts)
    assert any(t.startswith("train epoch 4/4 [") and " in " in t for t in texts)
    assert len(lines) < 12  # one output per pass, each updated, not one per redraw
    assert not [o for o in cell.outputs if o.output_type == "stream" and "\r" in o.get("text", "")]


def test_counts_stay_whole_and_plots_show_once_as_png(executed):
    (table,) = _data(_cell(executed, "model.evaluate("), "text/plain")
    assert "rows" in table and "50000" in table and "50000.0" not in table
    for starts in ("model.plot_roc(", "model.plot_weights("):
        cell = _cell(executed, starts)
        assert len(cell.outputs) == 1, cell.outputs
        assert _data(cell, "image/png")
    (drift,) = _data(_cell(executed, "make_parquet_dataset(\"nb-day2\""), "text/html")
    assert "jensen_shannon_divergence" in drift


def test_interrupting_the_kernel_stops_training_as_ctrl_c_does(tmp_path):
    """A kernel interrupt (the notebook's stop button) while TRAIN streams ends the cell with
    TrainingInterrupted, and the kernel lives on."""
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    try:
        client.execute_interactive(
            "from oocml.datasets import make_parquet_dataset\n"
            "make_parquet_dataset('d', rows=200_000, features=8, files=8)", timeout=120)
        client.execute("import oocml\n"
                       "oocml.sql(\"TRAIN sgd ON 'd' PREDICT y SCALE standard EPOCHS 100000\")")
        seen, error, interrupted = [], None, False
        while True:
            message = client.get_iopub_msg(timeout=120)
            kind, content = message["msg_type"], message["content"]
            text = content.get("data", {}).get("text/plain", "")
            if kind in ("display_data", "update_display_data"):
                seen.append(text)
                if text.startswith("train epoch 2/") and not interrupted:
                    manager.interrupt_kernel()
                    interrupted = True
            elif kind == "error":
                error = content
            elif kind == "status" and content["execution_state"] == "idle" and interrupted:
                break
        assert error is not None and error["ename"] == "TrainingInterrupted", error
        assert "training interrupted after" in error["evalue"]
        reply = client.execute_interactive("1 + 1", timeout=60)
        assert reply["content"]["status"] == "ok"  # the kernel lives on
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
