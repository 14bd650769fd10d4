"""What every command shares: settings, failing with a message and an exit code, opening the
service's parts once (and closing them however the command ends), printing a verdict."""

from __future__ import annotations

import json
import re
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, NoReturn

import click
from sqlalchemy.orm import sessionmaker

from materials_api.platform.config import Settings


def settings() -> Settings:
    return Settings()


# What an operator reads in Chinese beside the English reason, by exit code (README, "Exit codes").
IN_CHINESE = {1: "操作未完成：请求被拒绝或输入有误，请按上面的原因更正后重试",
              2: "参数、文件或配置有误：请按上面的说明更正（qiyema <命令> --help 查看用法）",
              3: "区块链、存储或网络暂不可用：已预写的内容会保留，请稍后重试"}


def fail(message: str, code: int = 1) -> NoReturn:
    """Print the reason (English, with its reason code) and its Chinese gloss, exit `code`."""
    click.echo(f"error: {message}", err=True)
    if not _CJK.search(message) and code in IN_CHINESE:
        click.echo(f"错误：{IN_CHINESE[code]}", err=True)
    sys.exit(code)


_CJK = re.compile(r"[\u4e00-\u9fff]")


RESUME = ("interrupted: what was read is written ahead; run the same command again to resume "
          "（已中断：已读入的内容已预写，再次运行同一命令即可继续）")


@contextmanager
def resumable() -> Iterator[None]:
    """Ctrl-C in a long import: say how to go on, exit 130 (the shell's code for SIGINT)."""
    try:
        yield
    except KeyboardInterrupt:
        fail(RESUME, 130)


@contextmanager
def opened(start_node: bool = True, upgrade: bool = False) -> Iterator[tuple]:
    """The runtime and the services of the composition root; a chain that cannot be reached, or
    that refuses a write the command makes, is exit 3 with the node's reason, a service's
    refusal exit 1 with its reason code (never a stack trace). Yields `(runtime, services)` and closes the runtime (and a node it started)."""
    from chain.crypto_profile import CryptoError
    from chain.errors import ChainError, QiyemaError
    from chain.keystore import KeyStoreError
    from chain.node import NodeError
    from materials_api.platform.runtime import Runtime
    from materials_api.root import Services

    try:
        runtime = Runtime.open(settings(), start_node=start_node, upgrade=upgrade)
    except (ChainError, NodeError) as exc:
        fail(f"chain: {exc}", 3)
    except KeyStoreError as exc:
        fail(f"keys: {exc.message} [{exc.code}]", 2)
    except CryptoError as exc:
        fail(f"crypto profile: {exc}", 2)
    try:
        yield runtime, Services.build(runtime)
    except ChainError as exc:
        fail(f"chain: {exc} (what was written ahead is kept: run the command again once the chain takes it)", 3)
    except QiyemaError as exc:  # a refusal (unknown key, no governor key, ...): its reason, exit 1
        fail(f"{exc.message} [{exc.code}]", 1)
    finally:
        runtime.close()


def trust_option(command):
    """`--trust-list FILE --governor ADDRESS`: the deployments a standalone verification accepts."""
    command = click.option("--governor", "trusted_governor", envvar="QIYEMA_TRUSTED_GOVERNOR", default=None,
                           help="the governor address pinned to sign the trust list (QIYEMA_TRUSTED_GOVERNOR)")(command)
    return click.option("--trust-list", "trust_list_file", type=click.Path(dir_okay=False, path_type=Path),
                        default=None, help="the governor-signed trust list (from `qiyema chain trust-list`); "
                                           "default: this home's")(command)


def load_trust(trust_list_file, trusted_governor: str | None):
    """The pinned deployments: a trust list FILE checked against the pinned governor, or this
    home's own list (written and signed by this home's service). Exit 2 when there is none: a
    verifier without a pin would believe whatever contract a bundle names."""
    from chain.trust import TrustList, TrustListError

    path = Path(trust_list_file) if trust_list_file else settings().trust_list_path
    if not path.is_file():
        fail(f"{path}: no trust list (pass --trust-list FILE --governor ADDRESS, or run where the service's "
             "home is)", 2)
    try:
        trust_list = TrustList.from_json(json.loads(path.read_text(encoding="utf-8")))
        if trust_list_file and not trusted_governor:
            fail("--trust-list needs --governor ADDRESS (the trust list's pinned signer)", 2)
        return trust_list.check(trusted_governor or trust_list.governor)
    except TrustListError as exc:
        fail(f"{path}: {exc.message} [{exc.code}]", 2)
    except ValueError as exc:
        fail(f"{path}: not JSON ({exc})", 2)


@contextmanager
def database() -> Iterator[sessionmaker]:
    """The database alone (migrated), for commands that need no chain."""
    from materials_api.platform.db import make_engine, migrate, session_factory

    s = settings()
    s.home.mkdir(parents=True, exist_ok=True)
    migrate(s.db_url)
    engine = make_engine(s.db_url)
    try:
        yield session_factory(engine)
    finally:
        engine.dispose()


def print_verdict(verdict, as_json: bool) -> NoReturn:
    """Print a verdict's checks (or JSON) and exit: 0 only when it is VALID."""
    if as_json:
        click.echo(json.dumps(verdict.as_dict(), ensure_ascii=False, indent=2))
    else:
        click.echo(f"verdict: {verdict.status.value}")
        if verdict.facts.get("genuine"):  # a code's genuineness, apart from the enterprise's standing
            click.echo(f"genuine: {verdict.facts['genuine']}")
        for c in verdict.checks:
            click.echo(f"  {c.name:<10} {c.status.value:<8} {c.reason}: {c.message}")
    sys.exit(0 if verdict.status.value == "VALID" else 1)
