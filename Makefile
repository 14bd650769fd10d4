# The two commands a newcomer needs: `make run` and `make test`. Both install what is missing.
.PHONY: run test test-contracts test-python bootstrap bootstrap-test bench

bootstrap:
	@scripts/bootstrap

run: bootstrap
	.venv/bin/qiyema init
	.venv/bin/qiyema serve

test: bootstrap-test test-contracts test-python

bootstrap-test:
	@scripts/bootstrap test

test-contracts:
	npx hardhat test

test-python:
	scripts/test-python

bench: bootstrap
	.venv/bin/python -m bench.chain_bench
