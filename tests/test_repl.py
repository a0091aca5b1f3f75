"""oocml-sql in a real pseudo-terminal (pexpect), and its batch modes by subprocess."""

from __future__ import annotations

import concurrent.futures
import io
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pexpect
import pytest
from prompt_toolkit.document import Document

import oocml
from oocml.cli.complete import OocmlCompleter, suggestions
from oocml.cli.repl import Shell
from oocml.datasets import make_parquet_dataset
from oocml.io.sources import open_source
from oocml.plan import Source

SCRIPT = shutil.which("oocml-sql", path=str(Path(sys.executable).parent)) or "oocml-sql"


def terminal(tmp_path: Path, *args: str, sigint: str = "default") -> pexpect.spawn:
    """oocml-sql in a pty; ``sigint="ignored"`` starts it as a job run with ``&`` by a script
    does, with SIGINT ignored (which Python keeps: it installs its own handler only if not)."""
    env = dict(os.environ, OOCML_HISTORY=str(tmp_path / "history"), PROMPT_TOOLKIT_NO_CPR="1",
               TERM="xterm", LINES="40", COLUMNS="160")  # the pty's size, whatever the runner says
    child = pexpect.spawn(SCRIPT, list(args), env=env, encoding="utf-8", timeout=60,
                          dimensions=(40, 160), cwd=str(tmp_path), preexec_fn=INHERITED[sigint])
    SPAWNED.append(child)
    child.expect("oocml>")
    return child


SPAWNED: list[pexpect.spawn] = []
INHERITED = {"default": None, "ignored": lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)}


@pytest.fixture(autouse=True)
def _no_repl_left_running():
    """A failed test must not leave its REPL training on (EPOCHS 100000 holds a core for
    minutes and slows every later test of the worker): each one is killed at teardown."""
    yield
    while SPAWNED:
        child = SPAWNED.pop()
        if child.isalive():
            child.close(force=True)


def quit_(child: pexpect.spawn) -> None:
    """Ctrl-D at a fresh prompt: a statement's output first proves the REPL is waiting for input
    (while a statement runs, or a key is still being handled, Ctrl-D would not mean EOF)."""
    child.send("SHOW MODELS;\r")
    child.expect(r"\(\d+ rows?\)")
    child.expect("oocml>")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_multiline_train_error_recovery_and_completion(tmp_path, binary_dir):
    child = terminal(tmp_path)
    child.send(f"TRAIN sgd ON '{binary_dir}'\r")
    child.expect(r"\.\.\.>")  # the statement goes on until ';'
    child.send("PREDICT y SCALE standard\r")
    child.expect(r"\.\.\.>")
    child.send("AS clicks;\r")
    child.expect("trained SGDClassifier on 30,000 rows")
    child.expect("oocml>")

    child.send("TRIAN sgd ON t;\r")  # an error, shown as one block, no traceback
    child.expect("did you mean 'TRAIN'")
    child.expect("oocml>")
    assert "Traceback" not in child.before
    child.send("SHOW MODELS;\r")
    child.expect(r"clicks\s+\|\s+1\s+\|\s+SGDClassifier")
    child.expect("oocml>")

    child.send("desc")  # keyword completion: wait for the menu, as a person would, then Tab
    child.expect("describe")
    child.send("\t")
    child.send(" cl")  # model-name completion
    child.expect("clicks")
    child.send("\t")
    time.sleep(0.3)
    child.send(";\r")
    child.expect("rows seen")
    child.expect("oocml>")

    child.send(f"TRAIN sgd ON '{binary_dir}' PREDICT y FEATURES x")  # column names from metadata
    child.expect(r"x0.*x1.*x2", timeout=30)
    child.send("\x03")  # Ctrl-C clears the line
    child.expect("oocml>")
    quit_(child)


def test_boosted_trees_complete_train_and_show_their_importances(tmp_path, binary_dir):
    """In a real terminal: `xgboost` and its parameters complete, it trains, SHOW WEIGHTS shows
    the importances."""
    pytest.importorskip("xgboost")
    child = terminal(tmp_path)
    child.send("SHOW MODELS;\r")  # the session is up: parameters complete from then on
    child.expect(r"\(0 rows\)")
    child.expect("oocml>")
    child.send("TRAIN xgb")
    child.expect("xgboost_regressor")  # the menu offers both
    child.send("\t")
    child.send(f" ON '{binary_dir}' PREDICT y WITH (max_dep")
    child.expect("max_depth")
    child.send("\t")
    child.send(" = 3, n_estimators = 20) AS trees;\r")
    child.expect("trained BoostedTreesClassifier on 30,000 rows")
    child.expect("oocml>")
    child.send("SHOW WEIGHTS trees;\r")
    child.expect(r"gain\s+\|\s+cover\s+\|\s+weight")
    child.expect("oocml>")
    quit_(child)


@pytest.fixture(scope="module")
def wide_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wide")
    make_parquet_dataset(folder, rows=2_000, features=12, files=2, seed=4)
    return folder


def test_columns_complete_in_the_order_of_the_data(tmp_path, wide_dir):
    child = terminal(tmp_path)
    child.send("\\tables\r")  # a meta command that needs the session: it has started
    child.expect(r"\(no tables\)")
    child.expect("oocml>")
    child.send(f"TRAIN sgd ON '{wide_dir}' PREDICT y FEATURES x")
    # the menu shows 7 rows: x0..x6 in order (sorted as text, x10 and x11 would come before x2)
    child.expect(r"x4\b[^x]*x5\b[^x]*x6\b", timeout=30)
    child.send("\x03")
    child.expect("oocml>")
    quit_(child)


@pytest.mark.parametrize("sigint", ["default", "ignored"])
def test_ctrl_c_stops_training_and_the_session_survives(tmp_path, binary_dir, sigint):
    """Ctrl-C during training, also when oocml-sql inherited an ignored SIGINT (started from a
    script's background job): an interactive REPL handles it all the same."""
    child = terminal(tmp_path, sigint=sigint)
    child.send(f"TRAIN sgd ON '{binary_dir}' PREDICT y SCALE standard EPOCHS 100000 AS endless;\r")
    child.expect("partitions", timeout=60)  # the progress line: training is under way
    time.sleep(0.5)
    child.sendintr()
    child.expect("training interrupted after")
    child.expect("oocml>")
    child.send("SHOW MODELS;\r")
    child.expect(r"\(0 rows\)")  # nothing half-trained was kept
    child.send(f"TRAIN naive_bayes ON '{binary_dir}' PREDICT y AS quick;\r")
    child.expect("trained GaussianNB")
    child.expect("oocml>")
    quit_(child)


@pytest.mark.parametrize(("delay", "sigint"), [(0.1, "default"), (0.3, "default"), (1.0, "default"),
                                               (0.3, "ignored")])
def test_ctrl_c_right_after_enter_on_the_first_statement(tmp_path, binary_dir, delay, sigint):
    """Ctrl-C soon after Enter on a fresh REPL's first statement, while its session is likely
    still loading: a signal, not a key the prompt's raw mode eats (nothing waits for the session
    inside the prompt), and the TRAIN ends as interrupted whichever step it had reached."""
    child = terminal(tmp_path, sigint=sigint)
    child.send(f"TRAIN sgd ON '{binary_dir}' PREDICT y SCALE standard EPOCHS 100000 AS endless;\r")
    time.sleep(delay)
    child.sendintr()
    child.expect("training interrupted", timeout=5)
    child.expect("oocml>")
    child.send("SHOW MODELS;\r")
    child.expect(r"\(0 rows\)")  # nothing was kept
    child.expect("oocml>")
    quit_(child)


def test_history_persists_across_runs(tmp_path):
    child = terminal(tmp_path)
    child.send("SHOW ALGORITHMS;\r")
    child.expect("minibatch_kmeans")
    child.expect("oocml>")
    quit_(child)
    assert "SHOW ALGORITHMS;" in (tmp_path / "history").read_text()
    child = terminal(tmp_path)
    child.send("\x1b[A\x1b[A")  # up arrow twice: past quit_'s SHOW MODELS to SHOW ALGORITHMS
    child.expect(r"SHOW\S*\s+\S*ALGORITHMS")  # highlighted: colour codes between the words
    child.send("\r")
    child.expect("minibatch_kmeans")
    child.expect("oocml>")
    child.send("\x12")  # Ctrl-R: reverse search through history
    child.expect("I-search backward")
    child.send("ALGO")
    child.expect(r"ALGO\S*RITHMS")  # the match, highlighted inside the found statement
    child.send("\x07")  # Ctrl-G: leave the search
    child.send("\x03")
    child.expect("oocml>")
    quit_(child)


def test_meta_commands(tmp_path, binary_dir):
    child = terminal(tmp_path)
    child.send("\\help TRAIN\r")
    child.expect(r"TRAIN \[OR REPLACE\] algo ON source")
    child.expect(r"HOLDOUT fraction \[EARLY STOP PATIENCE n\]")  # every clause of the grammar
    child.expect("oocml>")
    child.send("\\h\r")  # the general help, its meta commands listed from the registry
    child.expect(r"\\pager \[on\|off\] +page long results")
    child.expect("oocml>")
    child.send(f"\\table data '{binary_dir}'\r")
    child.expect("table data: x0, x1")
    child.send("\\tim")  # meta-command completion: wait for the menu, then Tab
    child.expect(r"\\timing")
    child.send("\t")
    child.send(" on\r")
    child.expect("timing is on")
    child.send("\\format csv\r")
    child.send("TRAIN sgd ON data PREDICT y AS m; EVALUATE m ON data;\r")
    child.expect("metric,value")
    child.expect(r"Time: \d+\.\d+s")
    child.send("\\tables\r")
    child.expect("data: x0")
    child.send("\\bogus\r")
    child.expect(r"unknown meta command '\\bogus'; \\help lists them")
    child.send("\\format xml\r")
    child.expect(r"usage: \\format table\|csv\|json")
    child.send("\\quit\r")
    child.expect(pexpect.EOF)


def run_batch(*args: str, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([SCRIPT, *args], input=stdin, capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def test_batch_command_file_and_stdin(tmp_path, binary_dir):
    done = run_batch("-c", f"TRAIN sgd ON '{binary_dir}' PREDICT y AS m; EVALUATE m ON '{binary_dir}'")
    assert done.returncode == 0, done.stderr
    assert "accuracy" in done.stdout and done.stderr == ""

    script = tmp_path / "job.sql"
    script.write_text(f"-- a script\nTRAIN sgd ON '{binary_dir}'\n  PREDICT y\n  AS m;\n"
                      f"\\format json\nPREDICT USING m ON '{binary_dir}' INTO '{tmp_path}/out';\n")
    done = run_batch("-f", str(script))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out").is_dir()

    done = run_batch(stdin="SHOW ALGORITHMS;\n")
    assert done.returncode == 0 and "sgd_regressor" in done.stdout


def test_batch_failure_exits_non_zero(tmp_path, binary_dir):
    done = run_batch("-c", "SHOW MODELS; TRIAN x; SHOW MODELS")
    assert done.returncode == 1
    assert "did you mean 'TRAIN'" in done.stderr and "Traceback" not in done.stderr
    done = run_batch("-c", f"TRAIN sgd ON '{binary_dir}' PREDICT nope", "--debug")
    assert done.returncode == 1 and "Traceback" in done.stderr and "'nope'" in done.stderr
    assert run_batch("-f", str(tmp_path / "missing.sql")).returncode == 2


def test_store_persists_models_between_runs(tmp_path, binary_dir):
    store = tmp_path / "models"
    assert run_batch("--store", str(store), "-c",
                     f"TRAIN sgd ON '{binary_dir}' PREDICT y AS kept").returncode == 0
    env_run = subprocess.run([SCRIPT, "-c", "SHOW MODELS"], capture_output=True, text=True,
                             env=dict(os.environ, OOCML_STORE=str(store)), timeout=120)
    assert "kept" in env_run.stdout


# -- completion, without a terminal ------------------------------------------------------------

@pytest.fixture
def completion_session(binary_dir):
    session = oocml.Session()
    session.sql(f"TRAIN sgd ON '{binary_dir}' PREDICT y AS clicks")
    return session


@pytest.mark.parametrize("text, expected", [
    ("TRA", ["TRAIN"]),
    ("TRAIN s", ["sgd", "sgd_regressor"]),
    ("EVALUATE cl", ["clicks"]),
    ("DROP MODEL ", ["clicks"]),
    ("SHOW TRIALS ", ["clicks"]),
    ("SHOW VERSIONS cl", ["clicks"]),
    ("ROLLBACK MODEL ", ["clicks"]),
    ("SHOW WEIGHTS cl", ["clicks"]),
    ("SHOW MODELS; DESC", ["DESCRIBE"]),
    ("TRAIN sgd ON t SCALE m", ["maxabs", "minmax"]),
    ("TRAIN sgd ON t WITH (alp", ["alpha"]),
    ("TRAIN mlp ON t WITH (hidden", ["hidden_layer_sizes"]),
    ("TRAIN sgd ON t PREDICT y TUNE (alp", ["alpha"]),
    ("TRAIN sgd ON t TUNE (alpha IN (1e-5, 1e-4), l1", ["l1_ratio"]),
    ("TRAIN perceptron ON t TUNE (et", ["eta0"]),
    ("TRAIN xg", ["xgboost", "xgboost_regressor"]),
    ("TRAIN xgboost ON t WITH (max_d", ["max_delta_step", "max_depth"]),
    ("TRAIN xgboost_regressor ON t TUNE (learning_r", ["learning_rate"]),
    ("TRAIN xgboost ON t TUNE (max_depth IN (3, 6), min_child", ["min_child_weight"]),
    ("TRAIN sgd ON t TUNE (alpha ", ["IN", "LOGUNIFORM(", "RANDINT(", "UNIFORM("]),
    ("TRAIN sgd ON t TUNE (alpha IN (1e-5), l1_ratio UNI", ["UNIFORM("]),
    ("TRAIN sgd ON t TUNE (alpha IN (1e-5, ", []),
    ("TRAIN sgd ON t TUNE (alpha LOGUNIFORM(1e-5, 1e-3)) TRI", ["TRIALS"]),
    ("TRAIN sgd ON t TUNE (alpha IN (1e-5)) WITH (los", ["loss"]),
    ("\\plot se", ["search"]),
    ("\\mo", ["\\models"]),
])
def test_completion(completion_session, text, expected):
    assert suggestions(text, completion_session)[0] == expected


def test_tune_completion_reuses_the_with_parameters_and_keeps_the_case(completion_session):
    with_params = suggestions("TRAIN sgd ON t WITH (", completion_session)[0]
    assert suggestions("TRAIN sgd ON t TUNE (", completion_session)[0] == with_params
    assert "alpha" in with_params and "fit_intercept" in with_params
    completer = OocmlCompleter(Shell(completion_session, io.StringIO(), io.StringIO()))
    typed = [c.text for c in completer.get_completions(
        Document("train sgd on t tune (alpha log"), None)]
    assert typed == ["loguniform("]


def test_completion_does_not_wait_for_a_loading_session(binary_dir):
    """While the session loads (a Future, here one that never completes), completion offers at
    once what needs no session (keywords, algorithms, paths) and nothing for models: it runs in
    the prompt's raw mode, where a wait would turn Ctrl-C into a key."""
    completer = OocmlCompleter(Shell(concurrent.futures.Future(), io.StringIO(), io.StringIO()))
    texts = ["DESC", "TRAIN s", "DROP MODEL ", "TRAIN sgd ON t WITH (",
             f"SHOW MODELS; TRAIN sgd ON '{binary_dir}/part-0000"]
    found: list[list[str]] = []

    def complete() -> None:
        for text in texts:
            found.append([c.text for c in completer.get_completions(Document(text), None)])

    worker = threading.Thread(target=complete, daemon=True)  # a wait would never end
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive(), "the completer waited for the session"
    assert found[:4] == [["DESCRIBE"], ["sgd", "sgd_regressor"], [], []]
    assert len(found[4]) == 6  # the six part files


def test_column_and_path_completion(completion_session, binary_dir):
    columns, _ = suggestions(f"TRAIN sgd ON '{binary_dir}' PREDICT y WHERE x1 > 2 AND x",
                             completion_session)
    assert columns == [f"x{i}" for i in range(6)]
    target, _ = suggestions(f"TRAIN sgd ON '{binary_dir}' PREDICT ", completion_session)
    assert "y" in target
    paths, word = suggestions(f"TRAIN sgd ON '{binary_dir}/part-0000", completion_session)
    assert len(paths) == 6 and word == f"{binary_dir}/part-0000"
    completion_session.register("events", completion_session.tables.get("events")
                                or open_source(Source(path=str(binary_dir))))
    assert suggestions("TRAIN sgd ON ev", completion_session)[0] == ["events"]
    assert "x3" in suggestions("TRAIN sgd ON events FEATURES x", completion_session)[0]


def test_inspecting_a_model_in_the_terminal(tmp_path, binary_dir):
    """The inspection views in a real terminal: the confusion matrix, the weights, the data
    profile, the learning curve's sparkline, and \\plot writing a PNG."""
    child = terminal(tmp_path)
    child.send(f"TRAIN sgd ON '{binary_dir}' PREDICT y SCALE standard WITH (loss = 'log_loss') "
               "EPOCHS 2 HOLDOUT 0.2 AS m;\r")
    child.expect("trained SGDClassifier")
    child.send(f"EVALUATE CONFUSION m ON '{binary_dir}';\r")
    child.expect(r"true \\ predicted \| +0 \| +1.*\(2 rows\)")
    child.send("SHOW WEIGHTS m;\r")
    child.expect(r"\(intercept\).*\(7 rows\)")
    child.send(f"DESCRIBE DATA '{binary_dir}';\r")
    child.expect(r"x5 +\| float64 \| +30000 .*\(7 rows\)")
    child.send("DESCRIBE m;\r")
    child.expect("learning curve *\\| [▁▂▃▄▅▆▇█]{2}  holdout score per epoch")
    child.send(f"\\plot roc m '{binary_dir}' '{tmp_path / 'roc.png'}'\r")
    child.expect("wrote ")
    child.expect("oocml>")
    assert (tmp_path / "roc.png").read_bytes()[:4] == b"\x89PNG"
    quit_(child)


def test_plot_of_a_search_in_the_terminal(tmp_path, binary_dir):
    """TUNE typed with completion (a parameter name, a distribution), then \\plot search."""
    child = terminal(tmp_path)
    child.send("\\tables\r")  # parameter names import the estimator: offered once the session is there
    child.expect(r"\(no tables\)")
    child.expect("oocml>")
    child.send(f"TRAIN sgd ON '{binary_dir}' PREDICT y TUNE (alph")
    child.expect("alpha")  # the menu: the estimator's parameters
    child.send("\t")
    child.send(" logun")
    child.expect(r"loguniform\(")
    child.send("\t")
    time.sleep(0.3)
    child.send("1e-5, 1e-3)) TRIALS 3 HALVING 3 EPOCHS 2 AS best;\r")
    child.expect("trained SGDClassifier")
    child.expect("oocml>")
    child.send(f"\\plot search best '{tmp_path / 'search.png'}'\r")
    child.expect("wrote ")
    child.expect("oocml>")
    assert (tmp_path / "search.png").read_bytes()[:4] == b"\x89PNG"
    child.send("\\plot search\r")  # the usage names the new view
    child.expect(r"usage: \\plot roc\|pr\|confusion\|weights\|history\|search model")
    child.expect("oocml>")
    quit_(child)


def test_encode_completion_per_column(completion_session, binary_dir):
    """ENCODE: methods, then the source's columns inside method(, the method's parameters
    inside USING (, methods again after a top-level comma."""
    source = f"TRAIN sgd ON '{binary_dir}' PREDICT y ENCODE "
    assert suggestions(source + "t", completion_session)[0] == ["text"]
    assert suggestions(source + "text(", completion_session)[0][:2] == ["x0", "x1"]
    assert suggestions(source + "text(x0, x", completion_session)[0][:2] == ["x0", "x1"]
    assert "ngram_range" in suggestions(source + "text(x0) USING (", completion_session)[0]
    assert suggestions(source + "onehot(x1) USING (", completion_session)[0] == ["max_categories"]
    assert suggestions(source + "text(x0) USING (binary = TRUE), o", completion_session)[0] == [
        "onehot", "ordinal"]
    assert suggestions(source + "text(x0) 1024 US", completion_session)[0] == ["USING"]


def test_a_sigint_at_the_prompt_clears_the_line(tmp_path):
    """SIGINT from ``kill`` (not the key), now that oocml handles it instead of prompt_toolkit."""
    child = terminal(tmp_path)
    child.send("SHOW MOD")
    child.expect("MOD")  # echoed (highlighting puts escapes between the words)
    child.kill(signal.SIGINT)
    child.expect("oocml>")
    child.send("SHOW MODELS;\r")  # the half-typed line was cleared: this parses
    child.expect(r"\(0 rows\)")
    child.expect("oocml>")
    quit_(child)


def test_the_prompt_sigint_handler_remembers_while_reading_and_raises_after():
    """Between Enter and the statement's start (the prompt's loop winding down, the terminal
    already cooked) a SIGINT is remembered, and the REPL cancels the statement; after, it raises."""
    from oocml.cli.repl import PromptSigint

    class Stopped:  # an app whose prompt has returned and whose loop is winding down
        is_running, loop, future = False, None, None

    sigint = PromptSigint(Stopped())
    sigint.reading = True
    sigint.handle(signal.SIGINT, None)
    assert sigint.interrupted
    sigint.reading = False
    with pytest.raises(KeyboardInterrupt):
        sigint.handle(signal.SIGINT, None)
