"""`qiyema`: the operators' command line, one module per group of commands, all over the one
composition root (`materials_api.root`) through `common.opened()`."""

from __future__ import annotations

import logging
import sys

import click

from materials_api.cli import backup, bank, codes, network, people, records, registry, service
from materials_api.cli import keys as _service_keys  # noqa: F401 - adds its commands to `qiyema keys`
from materials_api.platform.metrics import JsonFormatter


class _Commands(click.Group):
    """Usage mistakes (an unknown option, a missing argument) say so in Chinese too."""

    def main(self, *args, **kwargs):
        try:
            return super().main(*args, **{**kwargs, "standalone_mode": False})
        except click.UsageError as exc:
            exc.show()
            click.echo("错误：命令用法有误，请运行 qiyema <命令> --help 查看用法", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted. 已取消。", err=True)
            sys.exit(1)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)


@click.group(cls=_Commands)
@click.option("-v", "--verbose", is_flag=True, help="log what happens")
def main(verbose: bool) -> None:
    """Qiyema 企业码 · 材料银行 — operators' command line. Settings come from QIYEMA_* variables."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())  # one JSON object per line, with the request id
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler])


for command in (service.init, service.serve, service.demo, service.chain, network.network, people.keys, people.users,
                registry.enterprises, registry.uscc, records.records, codes.code, bank.material, backup.backup,
                backup.restore):
    main.add_command(command)
