"""Classifying materials by name: accuracy on a labelled set of realistic file names."""

from pathlib import Path

from materials_api.bank.catalogue import Catalogue

DATA = Path(__file__).parent / "data" / "material_names.tsv"


def labelled():
    for line in DATA.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, label = line.split("\t")
            yield name, label


def test_labelled_set_is_large_and_uses_only_known_folders():
    catalogue = Catalogue()
    rows = list(labelled())
    assert len(rows) >= 200
    assert {label for _, label in rows} <= set(catalogue.types)
    assert len({label for _, label in rows}) == len(catalogue.types)  # every folder is represented


def test_classification_accuracy_is_at_least_90_percent(capsys):
    catalogue = Catalogue()
    rows = list(labelled())
    wrong = [(n, want, catalogue.classify(n)) for n, want in rows if catalogue.classify(n) != want]
    accuracy = 1 - len(wrong) / len(rows)
    with capsys.disabled():
        print(f"\nclassification accuracy {accuracy:.1%} on {len(rows)} names; misses: {wrong}")
    assert accuracy >= 0.90


def test_catalogue_extension_file_adds_folders(tmp_path):
    (tmp_path / "catalogue.json").write_text(
        '{"material_types": [{"code": "environmental_report", "name": "环评报告", "keywords": ["环评", "环境影响"]}],'
        ' "service_items": [{"code": "eia", "name": "环评审批", "department": "生态环境局",'
        ' "requires": ["business_licence", "environmental_report"]}]}', encoding="utf-8")
    catalogue = Catalogue.load(tmp_path)
    assert catalogue.classify("项目环境影响评价报告书.pdf") == "environmental_report"
    assert catalogue.items["eia"].requires == ("business_licence", "environmental_report")


HELD_OUT = Path(__file__).parent / "data" / "material_names_heldout.tsv"


def test_the_score_on_names_it_was_never_tuned_on(capsys):
    """The score that counts: names written before anyone looked at the keywords (the file says
    so and must never be tuned on). Measured 2026-12-04: 84.3 % right (70 of 83); 12 of the 13
    misses go to 其他 (the person then picks the folder), 1 to a wrong folder. The floors: 80 %
    right, and at most 2 % filed in a wrong folder (worse than 其他: it looks decided)."""
    catalogue = Catalogue()
    rows = [tuple(line.split("\t")) for line in HELD_OUT.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")]
    assert len(rows) >= 80 and {label for _, label in rows} == set(catalogue.types)
    got = [(name, want, catalogue.classify(name)) for name, want in rows]
    right = sum(1 for _, want, label in got if label == want)
    misfiled = [(name, want, label) for name, want, label in got if label not in (want, "other")]
    with capsys.disabled():
        print(f"\nheld-out accuracy {right / len(rows):.1%} on {len(rows)} names; misfiled: {misfiled}")
    assert right / len(rows) >= 0.80
    assert len(misfiled) / len(rows) <= 0.02
