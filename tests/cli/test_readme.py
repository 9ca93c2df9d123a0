"""README.md stays true: its library example runs, and .ci/run calls its test command."""

import re

import numpy as np
from paths import REPO

ROOT = REPO
README = (ROOT / "README.md").read_text()


def test_readme_library_example_runs_and_picks_distinct_pairs():
    code = re.findall(r"```python\n(.*?)```", README, re.S)[0]
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    idx = np.asarray(scope["choice"].idx)
    assert idx.shape == (1000, 2) and np.all(idx[:, 0] != idx[:, 1])
    mean = np.asarray(scope["belief"].mean)
    assert (mean[:100, 0] > mean[:100, 1]).mean() > 0.9  # it learned "response 0 beats 1"


def test_ci_runs_exactly_the_readme_test_command():
    blocks = re.findall(r"```bash\n(.*?)\n```", README, re.S)
    test_command = blocks[1].strip()
    assert "pytest" in test_command
    assert test_command in (ROOT / ".ci" / "run").read_text().splitlines()
