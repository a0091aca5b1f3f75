"""Every example in the README runs: the python blocks in order, as one script, in a fresh folder."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_starts_with_the_two_commands():
    commands = blocks("bash")
    assert "pip install ." in commands[0] and "examples/quickstart.py" in commands[0]
    assert 'pip install ".[test]"' in commands[1] and "pytest" in commands[1]


def examples_as_script() -> str:
    """The python and sql blocks in README order; sql blocks run through oocml.sql."""
    parts = []
    for language, code in re.findall(r"```(python|sql)\n(.*?)```", README.read_text(), flags=re.S):
        parts.append(code if language == "python" else f"print(oocml.sql({code!r}))")
    return "\n\n".join(parts)


@pytest.fixture(scope="module")
def readme_folder(tmp_path_factory, s3_server):
    """A folder in which the README's python and sql examples have run, in order (with the
    test S3 server in the environment and the bucket its examples use)."""
    import s3fs

    s3fs.S3FileSystem(skip_instance_cache=True).mkdir("oocml-readme")
    folder = tmp_path_factory.mktemp("readme")
    script = examples_as_script()
    assert "oocml.sql(" in script
    (folder / "readme_examples.py").write_text(script)
    result = subprocess.run([sys.executable, "readme_examples.py"], cwd=folder,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return folder


def test_python_and_sql_examples_run(readme_folder):
    assert (readme_folder / "model.oocml").is_file() and (readme_folder / "scored").is_dir()


def test_repl_transcript(readme_folder):
    """The transcript's statements, replayed through oocml-sql, print what the README shows."""
    transcript = re.search(r"```console\n\$ oocml-sql (.*?)\n(.*?)```", README.read_text(), re.S)
    options, lines = transcript.group(1).split(), transcript.group(2).splitlines()
    statements = [re.sub(r"^(oocml|\.\.\.)> ?", "", line) for line in lines
                  if line.startswith(("oocml> ", "...> "))]
    expected = [line for line in lines if not line.startswith(("oocml> ", "...> "))]
    script = shutil.which("oocml-sql", path=str(Path(sys.executable).parent)) or "oocml-sql"
    result = subprocess.run([script, *options], input="\n".join(statements) + "\n",
                            cwd=readme_folder, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr

    def steady(text: str) -> str:  # timings vary from run to run
        return re.sub(r"\d+\.\d+s\)", "N.NNs)", text)

    assert steady(result.stdout).splitlines() == [steady(line) for line in expected]


def test_the_syntax_error_shown_is_the_real_one():
    from oocml.dsl.parser import parse
    from oocml.errors import OocmlSyntaxError

    shown = re.search(r"A syntax error shows.*?```\n(.*?)```", README.read_text(), flags=re.S).group(1)
    statement = shown.splitlines()[1].strip()
    try:
        parse(statement)
    except OocmlSyntaxError as error:
        assert str(error) == shown.rstrip("\n")
    else:
        raise AssertionError("the README's example parses")


def _train_statements() -> list[str]:
    """Every TRAIN statement of the README that reads a local folder or glob."""
    text = README.read_text()
    found = [s.strip() for block in blocks("sql")
             for s in re.sub(r"--[^\n]*", "", block).split(";")]
    found += re.findall(r'sql\("(TRAIN [^"]*)"\)', text)
    found = [s.removeprefix("EXPLAIN ").strip() for s in found]
    return [s for s in found if s.startswith("TRAIN") and "://" not in s]


def test_explains_python_runs_and_gives_the_same_model(readme_folder, monkeypatch):
    """EXPLAIN's equivalent Python, run as printed, trains the model the statement trains."""
    import numpy as np
    from helpers import equivalent_python

    import oocml

    monkeypatch.chdir(readme_folder)
    statements = _train_statements()
    assert len(statements) >= 3, statements
    for statement in statements:
        statement = re.sub(r"\bAS \w+\s*$", "", statement).replace("TRAIN OR REPLACE", "TRAIN")
        session = oocml.Session()
        namespace: dict = {}
        exec(equivalent_python(session.sql(f"EXPLAIN {statement}")), namespace)
        trained = session.sql(statement)
        for name in ("coef_", "intercept_", "theta_", "var_"):
            if hasattr(trained.estimator, name):
                np.testing.assert_array_equal(getattr(namespace["model"].estimator, name),
                                              getattr(trained.estimator, name), err_msg=statement)
