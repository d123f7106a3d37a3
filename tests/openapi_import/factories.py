from __future__ import annotations

import factory

from openapi_import.models import ApiSpec, Operation


class ApiSpecFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ApiSpec

    title = factory.Sequence(lambda n: f"Shop API {n}")
    version = "1.0"
    spec_version = "3.0.3"
    base_url = "https://shop.example/api"


class OperationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Operation

    spec = factory.SubFactory(ApiSpecFactory)
    operation_id = factory.Sequence(lambda n: f"op_{n}")
    method = "GET"
    path = factory.Sequence(lambda n: f"/things/{n}")
    parameters_schema = factory.LazyFunction(lambda: {"type": "object", "properties": {}})
    fingerprint = factory.Sequence(lambda n: f"{n:064d}")
    access_type = "read"
    approval = "none"
    suggested_access_type = "read"
    suggested_approval = "none"
