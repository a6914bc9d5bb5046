"""What a new Xero organisation starts with: its chart of accounts, tax rates, currencies and branding theme.

Xero seeds every organisation from a per-country template; these are abridged copies of those templates
(codes, names, types and tax types as Xero's NZ, AU, UK and US demo companies have them), enough for invoices,
bills, payments and items to validate the way they do in a real organisation.
"""

from __future__ import annotations

from dataclasses import dataclass

# Account type -> Xero's read-only Class.
ACCOUNT_CLASS = {
    "BANK": "ASSET",
    "CURRENT": "ASSET",
    "FIXED": "ASSET",
    "INVENTORY": "ASSET",
    "NONCURRENT": "ASSET",
    "PREPAYMENT": "ASSET",
    "CURRLIAB": "LIABILITY",
    "LIABILITY": "LIABILITY",
    "TERMLIAB": "LIABILITY",
    "PAYG": "LIABILITY",
    "EQUITY": "EQUITY",
    "DEPRECIATN": "EXPENSE",
    "DIRECTCOSTS": "EXPENSE",
    "EXPENSE": "EXPENSE",
    "OVERHEADS": "EXPENSE",
    "OTHERINCOME": "REVENUE",
    "REVENUE": "REVENUE",
    "SALES": "REVENUE",
}


@dataclass(frozen=True)
class TaxRateTemplate:
    tax_type: str
    name: str
    rate: float
    report_tax_type: str
    revenue: bool = True
    expenses: bool = True
    assets: bool = True
    equity: bool = True
    liabilities: bool = True


@dataclass(frozen=True)
class CountryTemplate:
    """The pieces of an organisation that depend on its country."""

    version: str
    timezone: str
    sales_tax: str  # default tax type on sales lines
    purchases_tax: str  # default tax type on purchase lines
    tax_rates: tuple[TaxRateTemplate, ...]
    sales_tax_basis: str
    sales_tax_period: str


_NZ = CountryTemplate(
    version="NZ",
    timezone="NEWZEALANDSTANDARDTIME",
    sales_tax="OUTPUT2",
    purchases_tax="INPUT2",
    sales_tax_basis="PAYMENTS",
    sales_tax_period="TWOMONTHS",
    tax_rates=(
        TaxRateTemplate("OUTPUT2", "15% GST on Income", 15.0, "OUTPUT", expenses=False),
        TaxRateTemplate("INPUT2", "15% GST on Expenses", 15.0, "INPUT", revenue=False),
        TaxRateTemplate("NONE", "No GST", 0.0, "NONE"),
        TaxRateTemplate("ZERORATED", "Zero Rated", 0.0, "ZERORATEDOUTPUT", expenses=False),
        TaxRateTemplate("GSTONIMPORTS", "GST on Imports", 0.0, "GSTONIMPORTS", revenue=False, expenses=False),
    ),
)
_AU = CountryTemplate(
    version="AU",
    timezone="AUSEASTERNSTANDARDTIME",
    sales_tax="OUTPUT",
    purchases_tax="INPUT",
    sales_tax_basis="ACCRUALS",
    sales_tax_period="QUARTERLY1",
    tax_rates=(
        TaxRateTemplate("OUTPUT", "GST on Income", 10.0, "OUTPUT", expenses=False),
        TaxRateTemplate("INPUT", "GST on Expenses", 10.0, "INPUT", revenue=False),
        TaxRateTemplate("EXEMPTOUTPUT", "GST Free Income", 0.0, "EXEMPTOUTPUT", expenses=False),
        TaxRateTemplate("EXEMPTEXPENSES", "GST Free Expenses", 0.0, "EXEMPTEXPENSES", revenue=False),
        TaxRateTemplate("BASEXCLUDED", "BAS Excluded", 0.0, "BASEXCLUDED"),
        TaxRateTemplate("GSTONIMPORTS", "GST on Imports", 0.0, "GSTONIMPORTS", revenue=False, expenses=False),
    ),
)
_GB = CountryTemplate(
    version="UK",
    timezone="GMTSTANDARDTIME",
    sales_tax="OUTPUT2",
    purchases_tax="INPUT2",
    sales_tax_basis="ACCRUAL",
    sales_tax_period="QUARTERLY",
    tax_rates=(
        TaxRateTemplate("OUTPUT2", "20% (VAT on Income)", 20.0, "OUTPUT", expenses=False),
        TaxRateTemplate("INPUT2", "20% (VAT on Expenses)", 20.0, "INPUT", revenue=False),
        TaxRateTemplate("RROUTPUT", "5% (VAT on Income)", 5.0, "OUTPUT", expenses=False),
        TaxRateTemplate("RRINPUT", "5% (VAT on Expenses)", 5.0, "INPUT", revenue=False),
        TaxRateTemplate("ZERORATEDOUTPUT", "Zero Rated Income", 0.0, "ZERORATEDOUTPUT", expenses=False),
        TaxRateTemplate("ZERORATEDINPUT", "Zero Rated Expenses", 0.0, "ZERORATEDINPUT", revenue=False),
        TaxRateTemplate("EXEMPTOUTPUT", "Exempt Income", 0.0, "EXEMPTOUTPUT", expenses=False),
        TaxRateTemplate("NONE", "No VAT", 0.0, "NONE"),
    ),
)
_US = CountryTemplate(
    version="US",
    timezone="EASTERNSTANDARDTIME",
    sales_tax="TAX001",
    purchases_tax="INPUT",
    sales_tax_basis="ACCRUAL",
    sales_tax_period="MONTHLY",
    tax_rates=(
        TaxRateTemplate("TAX001", "Sales Tax", 8.875, "USSALESTAX", expenses=False),
        TaxRateTemplate("INPUT", "Tax on Purchases", 0.0, "INPUT", revenue=False),
        TaxRateTemplate("NONE", "Tax Exempt", 0.0, "NONE"),
    ),
)
COUNTRIES = {"NZ": _NZ, "AU": _AU, "GB": _GB, "UK": _GB, "US": _US}


def country_template(country_code: str) -> CountryTemplate:
    """The template for a country code (unknown countries get the NZ template, as the demo company uses)."""
    return COUNTRIES.get(country_code.upper(), _NZ)


# (code, name, type, tax type or None for the country's sales/purchases default, system account, description)
# "S" and "P" stand for the country's default sales / purchases tax type.
ACCOUNTS: tuple[tuple[str, str, str, str, str, str], ...] = (
    ("090", "Business Bank Account", "BANK", "NONE", "", "Everyday business bank account"),
    ("091", "Business Savings Account", "BANK", "NONE", "", "Business savings"),
    ("200", "Sales", "REVENUE", "S", "", "Income from any normal business activity"),
    ("260", "Other Revenue", "REVENUE", "S", "", "Any other income that does not relate to normal business"),
    ("270", "Interest Income", "REVENUE", "NONE", "", "Interest income"),
    ("300", "Purchases", "DIRECTCOSTS", "P", "", "Goods purchased with the intention of selling them"),
    ("310", "Cost of Goods Sold", "DIRECTCOSTS", "P", "", "Cost of goods sold by the business"),
    ("400", "Advertising", "OVERHEADS", "P", "", "Expenses incurred for advertising"),
    ("404", "Bank Fees", "OVERHEADS", "NONE", "", "Fees charged by your bank"),
    ("408", "Cleaning", "OVERHEADS", "P", "", "Expenses incurred for cleaning business property"),
    ("412", "Consulting & Accounting", "OVERHEADS", "P", "", "Expenses related to paying consultants"),
    ("420", "Entertainment", "OVERHEADS", "NONE", "", "Expenses paid for entertainment"),
    (
        "429",
        "General Expenses",
        "OVERHEADS",
        "P",
        "",
        "General expenses related to the running of the business",
    ),
    ("433", "Insurance", "OVERHEADS", "P", "", "Expenses incurred for insuring the business' assets"),
    ("449", "Motor Vehicle Expenses", "OVERHEADS", "P", "", "Expenses incurred on the running of vehicles"),
    ("453", "Office Expenses", "OVERHEADS", "P", "", "General expenses related to the running of the office"),
    ("461", "Printing & Stationery", "OVERHEADS", "P", "", "Expenses incurred by the entity for printing"),
    ("469", "Rent", "OVERHEADS", "P", "", "The payment to lease a building or area"),
    (
        "473",
        "Repairs and Maintenance",
        "OVERHEADS",
        "P",
        "",
        "Expenses incurred on a damaged or run down asset",
    ),
    (
        "477",
        "Wages and Salaries",
        "EXPENSE",
        "NONE",
        "",
        "Payment to employees in exchange for their resources",
    ),
    ("485", "Subscriptions", "OVERHEADS", "P", "", "Memberships, journals and newspapers"),
    (
        "489",
        "Telephone & Internet",
        "OVERHEADS",
        "P",
        "",
        "Expenditure incurred from any business telephones",
    ),
    ("493", "Travel - National", "OVERHEADS", "P", "", "Expenses incurred from domestic travel"),
    (
        "610",
        "Accounts Receivable",
        "CURRENT",
        "NONE",
        "DEBTORS",
        "Outstanding invoices the company has issued",
    ),
    ("630", "Inventory", "INVENTORY", "NONE", "", "Value of tracked items for resale"),
    (
        "710",
        "Office Equipment",
        "FIXED",
        "P",
        "",
        "Office equipment that is owned and controlled by the business",
    ),
    (
        "800",
        "Accounts Payable",
        "CURRLIAB",
        "NONE",
        "CREDITORS",
        "Outstanding invoices the company has received",
    ),
    ("820", "Sales Tax", "CURRLIAB", "NONE", "GST", "The balance of sales tax collected and paid"),
    ("960", "Retained Earnings", "EQUITY", "NONE", "RETAINEDEARNINGS", "Earnings retained in the business"),
)

# Currencies an organisation may enable, with an indicative rate per unit of NZD (the generator and writes
# without a CurrencyRate use these the way Xero uses its XE.com day rate).
CURRENCY_NAMES = {
    "NZD": "New Zealand Dollar",
    "AUD": "Australian Dollar",
    "GBP": "British Pound",
    "USD": "United States Dollar",
    "EUR": "Euro",
    "CAD": "Canadian Dollar",
    "SGD": "Singapore Dollar",
    "JPY": "Japanese Yen",
}
RATE_PER_NZD = {
    "NZD": 1.0,
    "AUD": 0.91,
    "GBP": 0.47,
    "USD": 0.59,
    "EUR": 0.55,
    "CAD": 0.81,
    "SGD": 0.8,
    "JPY": 88.0,
}


def currency_rate(base: str, currency: str) -> float:
    """Units of ``currency`` per unit of ``base`` (Xero's CurrencyRate on a foreign-currency document)."""
    base_rate = RATE_PER_NZD.get(base, 1.0)
    other = RATE_PER_NZD.get(currency, 1.0)
    return round(other / base_rate, 6)


BRANDING_THEMES = (("Standard", 0), ("Special Projects", 1))
TRACKING_CATEGORIES = (
    ("Region", ("North", "South", "East", "West")),
    ("Sales Channel", ("Online", "Retail", "Wholesale")),
)
