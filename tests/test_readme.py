"""The README's two opening commands are the ones CI runs, and its documented commands exist."""

import re
from pathlib import Path

ROOT = Path(__file__).parent.parent


def opening_commands():
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    return block.strip().splitlines()


def test_readme_opens_with_two_commands_and_ci_runs_the_test_one():
    demo, test = opening_commands()
    assert "augkit run examples/quickstart.yaml" in demo
    assert "pytest" in test
    assert test in (ROOT / ".ci/run").read_text().splitlines()


def test_documented_commands_exist(cli):
    help_text = cli("--help").output
    for command in re.findall(r"^\| `augkit (\w+)", (ROOT / "README.md").read_text(), re.M):
        assert command in help_text, command
