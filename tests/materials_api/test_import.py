"""Bulk onboarding from CSV, on the in-process chain."""

import csv
import random

import pytest
from sqlalchemy import func, select

from codes.uscc import generate
from materials_api.platform.models import ChainState
from materials_api.registry.importer import ImportFileError, import_csv
from materials_api.registry.models import Enterprise
from materials_api.registry.service import EnterpriseService


def write_csv(path, rows, header=("uscc", "name")):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_import_registers_valid_rows_and_reports_rejected_ones(runtime, tmp_path):
    rng = random.Random(3)
    good = list(dict.fromkeys(generate(rng) for _ in range(120)))
    service = EnterpriseService(runtime.sessions, runtime.chain, batch_size=50)
    service.register(good[0], "先登记的公司")
    rows = [(c, f"公司{i}") for i, c in enumerate(good)]
    rows.insert(10, ("91350100M000100Y44", "校验码错"))
    rows.insert(20, ("9135", "太短"))
    rows.insert(30, (good[5], "文件内重复"))
    rows.insert(40, ("91350100M000100Y43", ""))
    path = write_csv(tmp_path / "register.csv", rows)
    report = import_csv(path, service, batch_size=50)
    assert report.total_rows == len(rows)
    assert report.accepted == len(good) - 1  # good[0] was registered before
    assert report.rejected == 5
    with open(report.rejections_file, encoding="utf-8") as f:
        reasons = sorted(r["reason_code"] for r in csv.DictReader(f))
    assert reasons == sorted(["uscc_check_character", "uscc_length", "duplicate_in_file", "name_empty",
                              "enterprise_exists"])
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Enterprise)) == len(good)
        assert s.scalar(select(func.count()).select_from(Enterprise)
                        .where(Enterprise.chain_state != ChainState.CONFIRMED.value)) == 0
    assert runtime.chain.ledger.enterprise_count() == len(good)
    again = import_csv(path, service, batch_size=50)
    assert again.already_finished and runtime.chain.ledger.enterprise_count() == len(good)


def test_chinese_headers_are_understood(runtime, tmp_path):
    path = write_csv(tmp_path / "r.csv", [("91350100M000100Y43", "福建示例科技有限公司")], header=("统一社会信用代码", "企业名称"))
    report = import_csv(path, EnterpriseService(runtime.sessions, runtime.chain), batch_size=10)
    assert report.accepted == 1


@pytest.mark.parametrize("content, message", [
    ("a,b\n1,2\n", "needs a USCC column"),
    ("", "no header row"),
])
def test_unusable_files_are_refused_before_anything_is_stored(runtime, tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(ImportFileError, match=message):
        import_csv(path, EnterpriseService(runtime.sessions, runtime.chain))
    assert runtime.chain.ledger.enterprise_count() == 0


def test_binary_file_is_refused(runtime, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"\xff\xfe\x00garbage\x00\x81")
    with pytest.raises(ImportFileError, match="UTF-8"):
        import_csv(path, EnterpriseService(runtime.sessions, runtime.chain))


def test_a_gbk_file_as_excel_saves_it_in_china_is_read_as_such(runtime, tmp_path):
    path = tmp_path / "登记名册.csv"
    path.write_bytes("统一社会信用代码,企业名称\r\n91350100M000100Y43,福建示例科技有限公司\r\n".encode("gbk"))
    report = import_csv(path, EnterpriseService(runtime.sessions, runtime.chain), batch_size=10)
    assert report.accepted == 1
    with runtime.sessions() as s:
        assert s.scalar(select(Enterprise.name)) == "福建示例科技有限公司"  # not mojibake



def test_progress_reaches_every_row_only_once_the_chain_holds_them(runtime, tmp_path):
    rng = random.Random(5)
    good = list(dict.fromkeys(generate(rng) for _ in range(130)))
    rows = [(c, f"公司{i}") for i, c in enumerate(good)] + [("9135", "太短")]
    path = write_csv(tmp_path / "register.csv", rows)
    service = EnterpriseService(runtime.sessions, runtime.chain, batch_size=50)
    done: list[int] = []

    def progress(n: int) -> None:
        done.append(n)
        if sum(done) == len(rows):  # the bar is full: every row is refused or on chain by now
            with runtime.sessions() as s:
                assert s.scalar(select(func.count()).select_from(Enterprise).where(
                    Enterprise.chain_state != ChainState.CONFIRMED.value)) == 0

    report = import_csv(path, service, batch_size=50, progress=progress)
    assert (report.accepted, report.rejected, sum(done)) == (len(good), 1, len(rows))
