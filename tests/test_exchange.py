"""Money in one currency: the rates, their setting, and scores in US dollars."""
import copy
import math

import pytest

import exchange
import features
import predict
import synth


@pytest.fixture
def rates_setting(monkeypatch):
    """Set USD_RATES for one test; the rates are read afresh before and after it."""
    def use(value):
        monkeypatch.setenv(exchange.SETTING, value)
        exchange.rates.cache_clear()

    monkeypatch.delenv(exchange.SETTING, raising=False)  # whatever the shell running the tests sets
    exchange.rates.cache_clear()
    yield use
    monkeypatch.delenv(exchange.SETTING, raising=False)
    exchange.rates.cache_clear()


def test_default_rates_cover_the_client_currencies():
    rates = exchange.parse_rates(None)
    assert rates == exchange.DEFAULT_RATES and rates["USD"] == 1.0
    assert set(rates) == {"USD", "GBP", "CAD", "AUD", "EUR", "NZD", "MXN"}
    assert all(math.isfinite(r) and r > 0 for r in rates.values())


def test_the_setting_replaces_and_adds_codes():
    rates = exchange.parse_rates(" gbp=1.25 , JPY = 0.0066,, USD=1.00")
    assert rates["GBP"] == 1.25 and rates["JPY"] == 0.0066
    assert rates["EUR"] == exchange.DEFAULT_RATES["EUR"]  # the others keep their defaults


@pytest.mark.parametrize("setting, named", [
    ("GBP", "'GBP' is not CODE=RATE"),
    ("POUND=1.2", "'POUND=1.2' is not CODE=RATE"),
    ("G1P=1.2", "'G1P=1.2' is not CODE=RATE"),
    ("=1.2", "'=1.2' is not CODE=RATE"),
    ("GBP=0", "rate of GBP must be a positive number"),
    ("GBP=-1.2", "rate of GBP must be a positive number"),
    ("GBP=nan", "rate of GBP must be a positive number"),
    ("GBP=inf", "rate of GBP must be a positive number"),
    ("GBP=", "rate of GBP must be a positive number"),
    ("GBP=1,2", "'2' is not CODE=RATE"),
    ("GBP=1.2,gbp=1.3", "GBP is given twice"),
    ("USD=2", "USD is the currency the rates are in; its rate is 1"),
])
def test_a_setting_that_cannot_be_read_names_the_part(setting, named):
    with pytest.raises(exchange.RatesError, match="USD_RATES") as raised:
        exchange.parse_rates(setting)
    assert named in str(raised.value)


@pytest.mark.parametrize("code, expected", [
    ("GBP", 1.27), (" gbp ", 1.27), ("USD", 1.0), ("XYZ", 1.0), ("", 1.0), (None, 1.0), (826, 1.0),
    ("G\x00P", 1.0),
])
def test_rate_of_a_code(rates_setting, code, expected):
    assert exchange.rate(code) == expected


def _event(currency, cost=100.0, quantity=90):
    event = synth.to_live(synth.generate_events(1, seed=11)[0])
    event.update(currency=currency, ticket_types=[{"cost": cost, "quantity_total": quantity}])
    return event


def test_scores_give_money_in_us_dollars(tiny_model, rates_setting):
    usd, gbp, nzd, unknown = (_event(c) for c in ("USD", "GBP", "NZD", "ZZZ"))
    scores = predict.score_records(tiny_model, [usd, gbp, nzd, unknown])
    assert [s["money_at_stake"] for s in scores] == [9000.0, 11430.0, 5400.0, 9000.0]
    for score in scores:
        assert score["expected_loss"] == pytest.approx(  # p is rounded to 6 places in the answer
            score["fraud_probability"] * score["money_at_stake"], abs=0.01 + 1e-6 * score["money_at_stake"])


def test_ten_thousand_nzd_no_longer_outranks_nine_thousand_gbp(tiny_model, rates_setting):
    nzd, gbp = _event("NZD", 100.0, 100), _event("GBP", 100.0, 90)
    assert features.money_at_stake(nzd) > features.money_at_stake(gbp)  # as priced
    money = {s["object_id"]: s["money_at_stake"] for s in predict.score_records(
        tiny_model, [{**nzd, "object_id": 1}, {**gbp, "object_id": 2}])}
    assert money[2] > money[1]  # in one currency


def test_the_setting_changes_the_scores_money(tiny_model, rates_setting):
    event = _event("GBP")
    rates_setting("GBP=2")
    assert predict.score_records(tiny_model, [copy.deepcopy(event)])[0]["money_at_stake"] == 18000.0
    rates_setting("")
    assert predict.score_records(tiny_model, [event])[0]["money_at_stake"] == 11430.0


def test_converted_money_stays_within_the_cap(tiny_model, rates_setting):
    rates_setting("GBP=1000")
    event = _event("GBP", cost=1e9, quantity=1e6)
    assert predict.score_records(tiny_model, [event])[0]["money_at_stake"] == features.MAX_MONEY


def test_the_app_refuses_to_start_with_unreadable_rates(make_app, rates_setting):
    rates_setting("GBP=lots")
    with pytest.raises(SystemExit, match="cannot start: USD_RATES: the rate of GBP"):
        make_app()


@pytest.mark.parametrize("command", [["predict.py", "--no-db"], ["model.py", "--quick", "--n", "300", "--out", "{tmp}/m.pkl"],
                                     ["bench.py", "--skip-postgres"]])
def test_every_command_refuses_unreadable_rates_with_a_message(command, tmp_path):
    """Each stops before its work with the setting's own message (no traceback, nothing written)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, exchange.SETTING: "GBP=lots"}
    command = [part.replace("{tmp}", str(tmp_path)) for part in command]
    done = subprocess.run([sys.executable, *command], cwd=root, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip() == "error: USD_RATES: the rate of GBP must be a positive number of US " \
                                  "dollars per unit, got 'lots'"


def test_the_artifact_records_the_rates_its_thresholds_were_chosen_with(tiny_model):
    assert tiny_model.metadata["cost_model"]["usd_rates"] == exchange.DEFAULT_RATES
