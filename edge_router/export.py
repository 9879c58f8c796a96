"""The route table as an nginx or an Envoy configuration, for a team that outgrows
the Python edge: same behaviours, same order, same limits, same X-Edge-* headers.

The nginx side is edge_router/nginx_conf.py (the one nginx renderer, the nginx
engine's too), the Envoy side edge_router/export_envoy.py; this module is what they
share and what `python manage.py edge export` imports.

Both keep the edge's matching rules: case-insensitive patterns on the normalised path
(nginx and Envoy both decode, merge slashes and resolve dot segments first), a
behaviour's methods, its limits. A static origin has no Envoy form (Envoy serves no
files). Canary mode is the engines' own: export one profile, legacy or strangler.
"""

from __future__ import annotations

from edge_router.nginx_conf import (
    NOT_FOUND,
    ExportError,
    ident,
    nginx_config,
    path_regex,
    upstream_name,
)

__all__ = [
    "NOT_FOUND",
    "ExportError",
    "ident",
    "nginx_config",
    "path_regex",
    "upstream_name",
]
