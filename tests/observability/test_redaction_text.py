"""The exporter's cleaning of a text: a secret parameter's value is replaced wherever
it sits, and a text with none (an SQL statement, a plain URL) comes back itself."""

from __future__ import annotations

import pytest

from common.tracing.redaction import REDACTED, text_redact

SQL = 'SELECT "shop_product"."id" FROM "shop_product" WHERE "shop_product"."slug" = %s'


@pytest.mark.parametrize(
    ("text", "cleaned"),
    [
        ("/orders/7/?token=abc", f"/orders/7/?token={REDACTED}"),
        ("/orders/7/?a=1&TOKEN=abc;b=2", f"/orders/7/?a=1&TOKEN={REDACTED};b=2"),
        ("access_token=zz&key=1", f"access_token={REDACTED}&key={REDACTED}"),
        (
            "GET 'http://h/p?Signature=s1#top'",
            f"GET 'http://h/p?Signature={REDACTED}#top'",
        ),
        (
            "http://h/p?password=p&sig=x",
            f"http://h/p?password={REDACTED}&sig={REDACTED}",
        ),
    ],
)
def test_every_secret_parameter_loses_its_value(text: str, cleaned: str) -> None:
    assert text_redact(text) == cleaned


@pytest.mark.parametrize(
    "text",
    [SQL, "/shop/?page=2&sort=price", "monkey=1", "/p?tokens=1", "no equals sign"],
)
def test_a_text_without_a_secret_comes_back_as_it_is(text: str) -> None:
    assert text_redact(text) is text
