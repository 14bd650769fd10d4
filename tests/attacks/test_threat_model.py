"""docs/threat-model.md stays true: every test it names exists, and every attack file here is
named there."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_threat_model_names_existing_tests_and_every_attack_file():
    text = (ROOT / "docs" / "threat-model.md").read_text(encoding="utf-8")
    named = set(re.findall(r"(tests/[\w/]+\.py)(?:::(\w+))?", text))
    assert named
    for path, test in named:
        source = (ROOT / path).read_text(encoding="utf-8")
        assert not test or f"def {test}(" in source, f"docs/threat-model.md names {path}::{test}, which is gone"
    files = {path for path, _ in named}
    for attack in sorted((ROOT / "tests" / "attacks").glob("test_*.py")):
        if attack.name != Path(__file__).name:
            assert f"tests/attacks/{attack.name}" in files, f"docs/threat-model.md does not name {attack.name}"
