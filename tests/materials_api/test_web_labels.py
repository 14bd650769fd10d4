"""Every state and check a person can meet has a Chinese label, in one table built from the
Python enums; the scripts read the same table from static/labels.js, which must not drift."""

from materials_api.web import labels


def test_every_enum_member_has_a_label_and_nothing_else_does():
    for name, table in labels.TABLES.items():
        members = {m.value for m in labels.ENUMS[name]}
        extra = {"expired"} if name == "material" else set()  # shown, not stored: an anchored one past its date
        assert set(table) == members | extra, f"{name}: label {sorted(members - set(table))}, drop {sorted(set(table) - members - extra)}"
        assert all(table.values()), name


def test_the_scripts_labels_are_generated_from_the_python_tables():
    written = (labels.STATIC / "labels.js").read_text(encoding="utf-8")
    assert written == labels.labels_js(), "run `python -m materials_api.web.labels` and commit static/labels.js"


def test_no_script_spells_out_its_own_verdict_labels():
    """The words and marks of a verdict and its checks live in labels.js only; scripts import them."""
    for path in labels.STATIC.glob("*.js"):
        if path.name == "labels.js":
            continue
        text = path.read_text(encoding="utf-8")
        for table in (labels.VERDICT, labels.CHECK, labels.MARK, labels.WORD):
            for word in table.values():
                assert f"'{word}'" not in text, f"{path.name} spells out {word!r}: take it from labels.js"
