"""The bench's floor (bench/floor.py) is the bench's alone: the orders service never
routes it, and it runs the orders service's own serving command."""

from __future__ import annotations

import pytest
from django.urls import Resolver404, resolve

from bench.floor_process import FLOOR_APP, ORDERS_APP, floor_argv
from common.harness.processes import venv_environ
from common.harness.procfile import procfile_argv


def test_the_orders_service_does_not_route_the_floor() -> None:
    with pytest.raises(Resolver404):
        resolve("/floor/", urlconf="orders_api.urls")


def test_the_floor_runs_the_orders_services_command_with_its_own_application() -> None:
    env = venv_environ({"ORDERS_PORT": "8102", "ORDERS_WORKERS": "2"})

    orders, floor = procfile_argv("orders", env), floor_argv(env)

    assert ORDERS_APP in orders
    assert floor == [FLOOR_APP if word == ORDERS_APP else word for word in orders]
