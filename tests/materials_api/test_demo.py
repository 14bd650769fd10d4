"""`qiyema demo` fills a new home only: made-up companies and people with printed passwords never
go into a home that serves real enterprises (issue 26, item 11)."""

import pytest
from sqlalchemy import func, select

from materials_api.demo import DemoRefused, fill
from materials_api.registry.models import Enterprise
from materials_api.root import Services


def test_the_demo_refuses_a_home_that_is_not_new(runtime):
    services = Services.build(runtime)
    services.enterprises.register("91350100M000100Y43", "福建示例科技有限公司")
    with pytest.raises(DemoRefused) as refused:
        fill(runtime, services)
    assert refused.value.code == "home_not_new" and "new home" in refused.value.message
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Enterprise)) == 1  # nothing added
