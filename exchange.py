"""Money in one currency: amounts converted to US dollars, so events priced in different
currencies can be compared, ordered and added up.

Events are priced in their own currency (USD, GBP, CAD, AUD, EUR, NZD, MXN in the client's
data). A queue ordered by raw amounts would put 10,000 NZD (about 6,000 USD) above 9,000 GBP
(about 11,400 USD), and a sum over tiers would add pounds to pesos. So the money the service
compares or adds (money at stake, expected loss, the cost model that sets the tier
thresholds) is in US dollars; reasons and the event page still quote the event's own currency.

The rates are configuration, not live data: ``DEFAULT_RATES`` are approximate, and the
``USD_RATES`` setting replaces or adds codes (``USD_RATES="GBP=1.25,EUR=1.10,JPY=0.0066"``: US
dollars per unit). An amount in a currency with no rate (a missing or unknown code) is taken
as US dollars: the majority currency, and never a reason to rank an event lower.
"""
from __future__ import annotations

import functools
import math
import os
import re

# US dollars per unit of each currency: approximate, for ordering work, not for accounting.
DEFAULT_RATES = {
    "USD": 1.0,
    "GBP": 1.27,
    "EUR": 1.08,
    "CAD": 0.73,
    "AUD": 0.66,
    "NZD": 0.60,
    "MXN": 0.055,
}
SETTING = "USD_RATES"
_CODE = re.compile(r"[A-Z]{3}")


class RatesError(ValueError):
    """The USD_RATES setting cannot be read."""


def parse_rates(setting: str | None) -> dict[str, float]:
    """DEFAULT_RATES with the codes a ``USD_RATES`` setting gives ("GBP=1.25, EUR=1.1").

    Raises RatesError naming the part it cannot read: a code that is not three letters, a rate
    that is not a positive finite number, a code given twice, or a rate for USD other than 1.
    """
    rates = dict(DEFAULT_RATES)
    seen = set()
    for part in (setting or "").split(","):
        if not part.strip():
            continue
        code, sep, value = part.partition("=")
        code = code.strip().upper()
        if not sep or not _CODE.fullmatch(code):
            raise RatesError(f"{SETTING}: {part.strip()!r} is not CODE=RATE (a three-letter "
                             "currency code, '=', US dollars per unit)")
        if code in seen:
            raise RatesError(f"{SETTING}: {code} is given twice")
        seen.add(code)
        try:
            rate = float(value)
        except ValueError:
            rate = math.nan
        if code == "USD" and rate != 1.0:
            raise RatesError(f"{SETTING}: USD is the currency the rates are in; its rate is 1, "
                             f"got {value.strip()!r}")
        if not (math.isfinite(rate) and rate > 0):
            raise RatesError(f"{SETTING}: the rate of {code} must be a positive number of US "
                             f"dollars per unit, got {value.strip()!r}")
        rates[code] = rate
    return rates


@functools.lru_cache(maxsize=1)
def rates() -> dict[str, float]:
    """The rates in force: DEFAULT_RATES with the ``USD_RATES`` setting, read once per process."""
    return parse_rates(os.environ.get(SETTING))


def code_of(currency) -> str:
    """A currency field as a code to look up: upper case, spaces trimmed ('' when not text)."""
    return currency.strip().upper() if isinstance(currency, str) else ""


def rate(currency) -> float:
    """US dollars per unit of a currency code (any case, spaces ignored); 1.0 when unknown."""
    return rates().get(code_of(currency), 1.0)


def to_usd(amount: float, currency) -> float:
    """An amount in the given currency, in US dollars."""
    return amount * rate(currency)
