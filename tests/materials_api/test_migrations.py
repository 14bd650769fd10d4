from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from materials_api.bank import models as _bank
from materials_api.codes import models as _codes
from materials_api.platform.db import Base, make_engine, migrate
from materials_api.records import models as _records


def test_migrations_build_exactly_the_models_schema_and_rerun_cleanly(database_url):
    migrate(database_url)
    migrate(database_url)  # idempotent
    engine = make_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
        assert {"enterprises", "api_keys", "organisations", "import_jobs"} <= set(inspect(conn).get_table_names())
    engine.dispose()
