"""Line and document totals the way Xero computes them: per-line rounding to cents, tax from EffectiveRate.

Money is computed with ``Decimal`` and rounded half away from zero to 2 places per line; documents sum their
rounded lines, so a document's totals always equal the sum of its lines (Xero's default line-level rounding):

* Exclusive: ``SubTotal = sum(LineAmount)``, ``TotalTax = sum(TaxAmount)``, ``Total = SubTotal + TotalTax``
* Inclusive: ``Total = sum(LineAmount)``, ``TotalTax = sum(TaxAmount)``, ``SubTotal = Total - TotalTax``
  (each line's tax is the tax contained in its inclusive amount: ``amount * rate / (100 + rate)``)
* NoTax: no tax at all, ``Total = SubTotal = sum(LineAmount)``

``LineAmount = round(Quantity * UnitAmount * (1 - DiscountRate / 100))`` (or minus ``DiscountAmount``), and
``TotalDiscount`` sums what the discounts took off each line.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal(0)
HUNDRED = Decimal(100)

EXCLUSIVE, INCLUSIVE, NO_TAX = "Exclusive", "Inclusive", "NoTax"
LINE_AMOUNT_TYPES = (EXCLUSIVE, INCLUSIVE, NO_TAX)


def dec(value: float | int | str | Decimal | None) -> Decimal:
    """A Decimal from a wire number without binary noise (``0.1`` -> ``Decimal("0.1")``)."""
    if value is None:
        return ZERO
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


def money(value: Decimal) -> Decimal:
    """Round to cents, half away from zero."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def to_float(value: Decimal) -> float:
    """Store money as a float that prints exactly as its Decimal (``float(Decimal("12.30"))`` -> ``12.3``)."""
    return float(value)


@dataclass(frozen=True)
class LineTotals:
    line_amount: Decimal
    tax_amount: Decimal
    discount: Decimal


@dataclass(frozen=True)
class DocumentTotals:
    sub_total: Decimal
    total_tax: Decimal
    total: Decimal
    total_discount: Decimal


def line_totals(
    quantity: Decimal,
    unit_amount: Decimal,
    tax_rate: Decimal,
    line_amount_types: str,
    discount_rate: Decimal | None = None,
    discount_amount: Decimal | None = None,
) -> LineTotals:
    """One line's amount, tax and discount (all rounded to cents)."""
    gross = quantity * unit_amount
    if discount_rate:
        amount = money(gross * (HUNDRED - discount_rate) / HUNDRED)
    elif discount_amount:
        amount = money(gross - discount_amount)
    else:
        amount = money(gross)
    discount = money(gross) - amount
    if line_amount_types == NO_TAX or not tax_rate:
        tax = ZERO
    elif line_amount_types == INCLUSIVE:
        tax = money(amount * tax_rate / (HUNDRED + tax_rate))
    else:
        tax = money(amount * tax_rate / HUNDRED)
    return LineTotals(amount, tax, discount)


def document_totals(lines: Iterable[LineTotals], line_amount_types: str) -> DocumentTotals:
    """Sum rounded lines into SubTotal, TotalTax, Total and TotalDiscount."""
    amounts = taxes = discounts = ZERO
    for line in lines:
        amounts += line.line_amount
        taxes += line.tax_amount
        discounts += line.discount
    if line_amount_types == INCLUSIVE:
        return DocumentTotals(amounts - taxes, taxes, amounts, discounts)
    return DocumentTotals(amounts, taxes, amounts + taxes, discounts)
