"""Every example in the README runs: the python blocks in order, as one script, in a fresh folder."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

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


def test_python_and_sql_examples_run(tmp_path):
    script = examples_as_script()
    assert "oocml.sql(" in script
    (tmp_path / "readme_examples.py").write_text(script)
    result = subprocess.run([sys.executable, "readme_examples.py"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]


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
