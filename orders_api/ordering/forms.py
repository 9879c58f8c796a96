"""The buy-now form: the same contract as the shop's (quantity, email, CSRF)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings


class BuyNowForm(forms.Form):
    quantity = forms.IntegerField()
    email = forms.EmailField(max_length=254)
    # Set by our own page so a double-click or a resubmitted POST orders once.
    idempotency_key = forms.CharField(
        required=False, max_length=255, widget=forms.HiddenInput
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The page shows it too (the quantity input's max).
        self.max_quantity: int = settings.MAX_QUANTITY_PER_ORDER
        self.fields["quantity"] = forms.IntegerField(
            min_value=1, max_value=self.max_quantity, initial=1
        )
