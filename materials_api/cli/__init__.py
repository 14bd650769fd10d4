"""`qiyema`: the operators' command line, one module per group of commands, all over the one
composition root (`materials_api.root`) through `common.opened()`."""

from __future__ import annotations

import logging

import click

from materials_api.cli import backup, bank, codes, network, people, records, registry, service
from materials_api.cli import keys as _service_keys  # noqa: F401 - adds its commands to `qiyema keys`
from materials_api.platform.metrics import JsonFormatter


@click.group()
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
