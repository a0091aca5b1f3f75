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


def test_python_examples_run(tmp_path):
    script = "\n\n".join(blocks("python"))
    assert script
    (tmp_path / "readme_examples.py").write_text(script)
    result = subprocess.run([sys.executable, "readme_examples.py"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
