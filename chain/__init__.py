"""Chain layer: compile the contracts, deploy them, and talk to any EVM node over JSON-RPC."""
