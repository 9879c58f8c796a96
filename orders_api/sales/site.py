"""The sale's minisite: its product page as static files the edge serves itself
(a static origin, edge_router/static.py), as the workshop's was on S3 behind
CloudFront. Built when the sale opens (`sale open`) or at deploy (`sale build-site`).

The files sit under the directory by their URL path, as S3 keys do:
`<dir>/shop/<category>/<slug>/index.html` and its `assets/`. The page holds what does
not change during a sale (name, price, description); the stock is fetched from the
public sale API (`/api/sales/<slug>/`) and the order placed through the JSON API
(`POST /api/orders/`) by its script, `site.js`. Without the script the form posts
to the buy-now endpoint, which the orders service answers.

A build never leaves a half-written site: each file is written beside its place and
renamed over it, assets (named by their content's hash) before the page that names
them. An older build's assets stay: a page a browser still caches finds its own.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles import finders
from django.template.loader import render_to_string

from common.errors import ApplicationError
from orders_api.models import Sale
from orders_api.web.context_processors import SHOP_NAV

# (the file in the site's assets/, the static file it is a copy of)
ASSETS = (
    ("site.css", "common/site.css"),
    ("orders.css", "css/orders.css"),
    ("logo.svg", "img/logo.svg"),
    ("site.js", "js/site.js"),
)


class SiteBuildFailed(ApplicationError):
    status_code = 500
    code = "site_build_failed"


def sale_site_path(*, sale: Sale) -> str:
    """The product page's URL path, the minisite's own."""
    return f"/shop/{sale.category_slug}/{sale.slug}/"


def _write(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".build-")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(content)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _static(name: str) -> bytes:
    found = finders.find(name)
    if not found:
        raise SiteBuildFailed(f"The static file {name!r} is missing.")
    return Path(str(found)).read_bytes()


def _versioned(name: str, content: bytes) -> str:
    """`site.css` as `site.<hash>.css`: a rebuilt asset gets a new URL, so a page
    never meets a cached asset of another build."""
    stem, dot, suffix = name.rpartition(".")
    return f"{stem}.{hashlib.sha256(content).hexdigest()[:10]}{dot}{suffix}"


def sale_site_build(*, sale: Sale, directory: Path | None = None) -> Path:
    """Write the sale's minisite under `directory` (default settings.SALE_SITE_DIR);
    returns the page's file."""
    root = Path(directory or settings.SALE_SITE_DIR)
    page_path = sale_site_path(sale=sale)
    base = root / page_path.strip("/")
    assets: dict[str, str] = {}
    sources = [*ASSETS, ("product.svg", f"img/{sale.slug}.svg")]
    for name, source in sources:
        content = _static(source)
        versioned = _versioned(name, content)
        _write(base / "assets" / versioned, content)
        assets[name.replace(".", "_")] = f"{page_path}assets/{versioned}"
    html = render_to_string(
        "orders_api/site/product.html",
        {
            "sale": sale,
            "page_path": page_path,
            "assets": assets,
            "shop_nav": SHOP_NAV,
            "max_quantity": settings.MAX_QUANTITY_PER_ORDER,
        },
    )
    page = base / "index.html"
    _write(page, html.encode())
    return page
