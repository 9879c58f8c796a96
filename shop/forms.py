"""The shop's forms: every customer input is validated here before a service sees it."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import User

from shop.selectors import SEARCH_MAX_LENGTH


def _quantity_field(*, minimum: int) -> forms.IntegerField:
    return forms.IntegerField(
        min_value=minimum,
        max_value=settings.MAX_QUANTITY_PER_LINE,
        initial=1,
        widget=forms.NumberInput(attrs={"class": "qty"}),
    )


class BuyNowForm(forms.Form):
    """Buy one product straight away. Anonymous buyers (or accounts without an e-mail
    address) must say where the confirmation goes."""

    quantity = forms.IntegerField()
    email = forms.EmailField(
        required=False,
        max_length=254,
        widget=forms.EmailInput(attrs={"placeholder": "you@example.com"}),
    )

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["quantity"] = _quantity_field(minimum=1)
        self.account_email = (
            user.email if user is not None and user.is_authenticated else ""
        )
        if self.account_email:
            del self.fields["email"]
        else:
            self.fields["email"].required = True

    def order_email(self) -> str:
        return self.account_email or self.cleaned_data["email"]


class BasketAddForm(forms.Form):
    product = forms.CharField(max_length=32, widget=forms.HiddenInput)
    quantity = forms.IntegerField()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["quantity"] = _quantity_field(minimum=1)


class BasketUpdateForm(forms.Form):
    """Set a line's quantity; 0 removes the line."""

    product = forms.CharField(max_length=32, widget=forms.HiddenInput)
    quantity = forms.IntegerField()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["quantity"] = _quantity_field(minimum=0)


class CheckoutForm(forms.Form):
    email = forms.EmailField(
        max_length=254,
        widget=forms.EmailInput(attrs={"placeholder": "you@example.com"}),
        help_text="We send the order confirmation here.",
    )


class SearchForm(forms.Form):
    q = forms.CharField(max_length=SEARCH_MAX_LENGTH, required=False, strip=True)


class SignUpForm(UserCreationForm):
    email = forms.EmailField(
        max_length=254, help_text="For order confirmations. We never share it."
    )

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")
