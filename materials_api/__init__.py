"""Qiyema service: FastAPI app, database, storage, CLI."""
