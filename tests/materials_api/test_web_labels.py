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


def test_reasons_are_explained_in_chinese_and_the_banner_never_calls_an_expired_code_forged():
    import re

    for reason, text in labels.REASON.items():
        assert not re.search(r"[A-Za-z]{3,}", text), f"{reason}: {text!r} is not Chinese"
        assert re.search(r"[\u4e00-\u9fff]", text), reason
    expired = {"status": "INVALID", "checks": [
        {"name": "signature", "status": "VALID", "reason": "signed", "message": ""},
        {"name": "expiry", "status": "INVALID", "reason": "expired", "message": "expired 30 s ago"},
        {"name": "status", "status": "VALID", "reason": "enterprise_active", "message": ""}]}
    title, step, colour = labels.headline(expired)
    assert title == "码已过期" and "刷新" in step and colour == "CAUTION"
    forged = {"status": "INVALID", "checks": [{"name": "signature", "status": "INVALID", "reason": "bad_signature"}]}
    assert labels.headline(forged) == labels.DEFAULT_HEADLINE["INVALID"]
    # An ERROR beside an INVALID: the INVALID decides.
    both = {"status": "INVALID", "checks": [{"name": "liveness", "status": "ERROR", "reason": "chain_timeout"},
                                            {"name": "expiry", "status": "INVALID", "reason": "replayed"}]}
    assert labels.headline(both)[0] == "此码已经用过"
    down = {"status": "ERROR", "checks": [{"name": "anchor", "status": "ERROR", "reason": "chain_timeout"}]}
    assert labels.headline(down) == labels.DEFAULT_HEADLINE["ERROR"]
    assert labels.headline({"status": "VALID", "checks": []}) == ("真实有效", "", "VALID")


def test_standing_is_its_own_answer():
    ok = [{"css": "VALID", "state": "valid"}]
    assert labels.standing("active", ok) == "ok"
    assert labels.standing("abnormal", ok) == "abnormal"
    assert labels.standing("active", ok + [{"css": "INVALID", "state": "revoked"}]) == "lapsed"
    assert labels.standing("active", ok + [{"css": "SKIPPED", "state": "removed"}]) == "ok"
    assert labels.standing("revoked", ok) == "revoked" and labels.standing("deregistered", []) == "deregistered"


def test_the_permits_timeline_colours_each_record_by_what_it_is_today():
    from materials_api.web.timeline import DAY, permits_timeline

    now = 1_900_000_000
    rows = [{"kind_name": "营业执照", "valid_from": now - 900 * DAY, "valid_until": None, "state": "valid"},
            {"kind_name": "食品经营许可证", "valid_from": now - 300 * DAY, "valid_until": now + 12 * DAY, "state": "valid"},
            {"kind_name": "卫生许可证", "valid_from": now - 800 * DAY, "valid_until": now - 5 * DAY, "state": "valid"},
            {"kind_name": "药品经营许可证", "valid_from": now - 100 * DAY, "valid_until": now + 900 * DAY, "state": "revoked"},
            {"kind_name": "已移出", "valid_from": None, "valid_until": None, "state": "removed"}]
    t = permits_timeline(rows, now)
    assert [(b.label, b.css, b.note) for b in t.bars] == [
        ("营业执照", "VALID", "有效"), ("食品经营许可证", "CAUTION", "12 天后到期"),
        ("卫生许可证", "EXPIRED", "已过期"), ("药品经营许可证", "INVALID", "已撤销")]
    assert t.bars[0].x == 0.0 and t.bars[0].x + t.bars[0].width == 100.0  # 长期: from the start to the edge
    assert 0 < t.today_x < 100 and all(0 <= b.x <= 100 and b.x + b.width <= 100.01 for b in t.bars)
    expired = t.bars[2]
    assert expired.x + expired.width < t.today_x  # ended before today
    assert permits_timeline([], now) is None
