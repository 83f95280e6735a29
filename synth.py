"""Synthetic marketplace events, calibrated to the published figures in ../shared/DATA.md.

The client's labelled history is confidential, so the project trains, tests and demos on events
made here. Each record has exactly the 44 keys, types and nested shapes of the real data.

How the numbers are made (a Gaussian copula with class-conditional marginals):
  1. Each event gets a label (fraud or not, exact counts per year of ``event_created``) and a
     latent score ``L ~ N(0, 1)``: how established and careful the organiser looks.
     Within fraud, the top quarter of ``L`` is the "sophisticated" sub-type (weeks- or
     months-old accounts, real descriptions); within legit, the bottom ~14 % is the
     "risky-looking" sub-type (brand-new organisers, thin pages).
  2. Each field draws ``u = Phi(rho * L + sqrt(1 - rho^2) * noise)``, which is uniform within a
     class, and maps it through that class's quantile function (knots taken from DATA.md).
     So every class-conditional distribution matches DATA.md, while ``rho`` sets how strongly
     the signals move together and hence how separable the classes are (no model is perfect).
  3. Text, venues, ticket tiers and payout histories are then built record by record so that
     the record is internally consistent (``name_length == len(name)``,
     ``approx_payout_date == event_end + 5 days``, ``gts`` from the tickets sold, ...).

Deterministic: one ``numpy.random.Generator`` seeded with ``seed`` drives everything, in a
fixed order; nothing depends on the clock or on set ordering.

CLI:
  python synth.py --n 14337 --seed 0 --out data/synth.json [--live] [--format json|jsonl]
  python synth.py --examples test_script_examples.json
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from scipy.special import ndtr

# ----------------------------------------------------------------------------------------------
# Shapes
# ----------------------------------------------------------------------------------------------

FIELDS = (
    "acct_type", "approx_payout_date", "body_length", "channels", "country", "currency",
    "delivery_method", "description", "email_domain", "event_created", "event_end",
    "event_published", "event_start", "fb_published", "gts", "has_analytics", "has_header",
    "has_logo", "listed", "name", "name_length", "num_order", "num_payouts", "object_id",
    "org_desc", "org_facebook", "org_name", "org_twitter", "payee_name", "payout_type",
    "previous_payouts", "sale_duration", "sale_duration2", "show_map", "ticket_types",
    "user_age", "user_created", "user_type", "venue_address", "venue_country",
    "venue_latitude", "venue_longitude", "venue_name", "venue_state",
)

LIVE_FIELDS_43 = tuple(f for f in FIELDS if f != "acct_type")

# The later feed: DATA.md names five dropped keys plus quantity_sold inside ticket_types, and a
# new sequence_number, yet says 38 keys; 43 - 5 + 1 = 39, so one more key must be gone. We drop
# ``listed`` (no signal: 'y' in ~85 % of both classes). A judgement call, documented here.
LATER_FEED_DROPPED = ("approx_payout_date", "gts", "num_order", "num_payouts", "sale_duration2",
                      "listed")
LIVE_FIELDS_38 = tuple(f for f in LIVE_FIELDS_43 if f not in LATER_FEED_DROPPED) + (
    "sequence_number",)

# Older examples (36 keys): the later-feed shape before sequence_number and has_header existed.
OLDER_FEED_DROPPED = LATER_FEED_DROPPED + ("has_header",)
LIVE_FIELDS_36 = tuple(f for f in LIVE_FIELDS_43 if f not in OLDER_FEED_DROPPED)

# Columns that hold gaps in the client's frame, so pandas sends them as floats in every record.
LIVE_FLOAT_FIELDS = ("delivery_method", "event_published", "has_header", "org_facebook",
                     "org_twitter", "sale_duration", "venue_latitude", "venue_longitude")

DAY = 86400
# History is "as of extraction": payouts after this moment do not exist yet.
EXTRACTION_TIME = int(datetime(2013, 11, 15, tzinfo=timezone.utc).timestamp())
SITE_START = int(datetime(2006, 1, 1, tzinfo=timezone.utc).timestamp())

# ----------------------------------------------------------------------------------------------
# Calibration tables (from DATA.md; knots are (probability, value) pairs of a quantile function)
# ----------------------------------------------------------------------------------------------

ACCT_FRAUD = {"fraudster_event": 851, "fraudster": 437, "fraudster_att": 5}
ACCT_LEGIT = {"premium": 12373, "spammer_limited": 218, "spammer_warn": 144, "tos_warn": 91,
              "spammer_noinvite": 84, "tos_lock": 77, "locked": 54, "spammer_web": 2, "spammer": 1}

# Share of events created in each year, and the fraud share within the year.
YEAR_SHARE = {2007: 0.004, 2008: 0.012, 2009: 0.025, 2010: 0.06, 2011: 0.24, 2012: 0.40,
              2013: 0.259}
YEAR_FRAUD_RATE = {2007: 0.085, 2008: 0.085, 2009: 0.085, 2010: 0.085, 2011: 0.082,
                   2012: 0.103, 2013: 0.081}

# Quantile knots per class: (probs, values). "log" knots interpolate in log1p space.
Q = {
    "user_age": {
        "fraud": ([0, .56, .5601, .75, .90, .97, 1], [0, 0, 1, 16, 130, 600, 2200]),
        "legit": ([0, .14, .1401, .25, .5, .75, .9, .99, 1], [0, 0, 1, 37, 293, 640, 1008, 1900, 2400]),
    },
    "body_length": {
        "fraud": ([0, .257, .2571, .5, .75, .9, .99, 1], [0, 0, 20, 452, 1669, 3600, 12000, 30000]),
        "legit": ([0, .038, .0381, .1, .25, .5, .75, .9, .99, 1],
                  [0, 0, 20, 227, 904, 2164, 4567, 8752, 25000, 60000]),
    },
    "name_length": {
        "fraud": ([0, .1, .25, .5, .75, .9, 1], [3, 8, 14, 25, 38, 56, 110]),
        "legit": ([0, .1, .25, .5, .75, .9, 1], [5, 19, 27, 39, 54, 70, 140]),
    },
    "days_to_start": {
        "fraud": ([0, .1, .25, .5, .75, .9, .99, 1], [0.02, 0.5, 1.3, 4.2, 19, 44, 150, 400]),
        "legit": ([0, .05, .1, .25, .5, .75, .9, .99, 1], [0.15, 5, 10.2, 21, 37, 67, 114, 300, 720]),
    },
    "mean_cost": {
        "fraud": ([0, .1, .25, .5, .75, .9, .99, 1], [3, 20, 40, 83, 200, 472, 1800, 5000]),
        "legit": ([0, .1, .25, .5, .75, .9, .99, 1], [1, 7, 13, 25, 55, 175, 700, 3000]),
    },
    "gts": {
        "fraud": ([0, .248, .2481, .3, .5, .75, .9, .99, 1], [0, 0, 3, 25, 300, 1644, 5323, 18000, 50000]),
        "legit": ([0, .003, .0031, .1, .25, .5, .75, .9, .99, 1],
                  [0, 0, 5, 42, 125, 439, 1541, 4867, 40000, 300000]),
    },
    "num_payouts": {  # floored after interpolation, so each step is a point mass
        "fraud": ([0, .89, .8901, .95, .99, 1], [0, 0.99, 1, 2, 10, 40]),
        "legit": ([0, .30, .3001, .5, .75, .9, .99, 1], [0, 0.99, 1, 3.6, 16, 70, 400, 1000]),
    },
    "org_facebook": {
        "fraud": ([0, .93, .9301, .99, 1], [0, 0.99, 1, 20, 60]),
        "legit": ([0, .52, .5201, .75, .9, .99, 1], [0, 0.99, 1, 15, 23, 45, 90]),
    },
    "org_twitter": {
        "fraud": ([0, .94, .9401, .99, 1], [0, 0.99, 1, 14, 40]),
        "legit": ([0, .55, .5501, .75, .9, .99, 1], [0, 0.99, 1, 11, 14, 30, 70]),
    },
}
LOG_KNOTS = {"body_length", "days_to_start", "mean_cost", "gts", "name_length"}

# Binary fields: P(value == 1) by class. Direction +1: the legit-looking value is 1.
RATES = {
    "has_logo": (0.646, 0.862, +1),
    "has_analytics": (0.003, 0.080, +1),
    "fb_published": (0.022, 0.138, +1),
    "show_map": (0.756, 0.853, +1),
    "has_header_one": (0.069, 0.21, +1),  # among non-null has_header
    "all_caps_name": (0.28, 0.06, -1),
    "empty_org_desc": (0.55, 0.28, -1),
    "empty_org_name": (0.25, 0.096, -1),
    "payee_name": (0.023, 0.382, +1),
    "venue_null": (0.14, 0.068, -1),
}
HAS_HEADER_NULL = (0.61, 0.354)

# Categorical fields: {value: count} per class, ordered from the most fraud-looking value to the
# most legit-looking one (the copula maps low u to the left).
CHANNELS = {
    "fraud": {0: 559, 13: 30, 6: 156, 9: 2, 7: 1, 10: 19, 5: 206, 11: 162, 4: 33, 12: 24, 8: 101},
    "legit": {0: 2382, 13: 202, 6: 1580, 9: 18, 7: 9, 10: 218, 5: 2253, 11: 2150, 4: 523,
              12: 446, 8: 3263},
}
USER_TYPE = {
    "fraud": {1: 927, 5: 7, 3: 293, 4: 66},
    "legit": {1: 2811, 103: 2, 2: 1, 5: 52, 3: 7227, 4: 2951},
}
DELIVERY = {  # None is missing
    "fraud": {None: 12, 0.0: 1201, 3.0: 7, 1.0: 73},
    "legit": {None: 4, 0.0: 7319, 3.0: 240, 1.0: 5481},
}
PAYOUT_TYPE = {
    "fraud": {"": 0.14, "CHECK": 0.36, "ACH": 0.50},
    "legit": {"": 0.008, "CHECK": 0.342, "ACH": 0.65},
}
CURRENCY = {
    "fraud": {"USD": 858, "GBP": 343, "CAD": 42, "EUR": 37, "AUD": 12, "MXN": 1},
    "legit": {"USD": 8838, "GBP": 1879, "CAD": 1280, "AUD": 767, "EUR": 225, "NZD": 55},
}
CURRENCY_COUNTRY = {"USD": "US", "GBP": "GB", "CAD": "CA", "AUD": "AU", "NZD": "NZ", "MXN": "MX"}
EURO_COUNTRIES = ("IE", "DE", "FR", "NL", "ES", "IT", "BE", "AT", "FI", "PT")
OTHER_COUNTRIES = (
    "IN", "NG", "PH", "ZA", "AR", "BR", "SG", "MY", "HK", "JP", "CN", "KR", "TH", "VN", "ID",
    "PK", "BD", "KE", "GH", "EG", "MA", "AE", "SA", "IL", "TR", "RU", "UA", "PL", "CZ", "HU",
    "RO", "BG", "GR", "SE", "NO", "DK", "CH", "LU", "IS", "CL", "CO", "PE", "VE", "JM", "TT",
    "PR", "DO", "CR", "PA", "GT", "QA", "KW", "LB", "JO", "LK", "NP", "CM", "UG", "TZ",
)
FREE_MAIL = {"gmail.com": 3097, "yahoo.com": 792, "hotmail.com": 399, "aol.com": 198,
             "live.com": 80, "me.com": 75, "ymail.com": 68, "hotmail.co.uk": 60,
             "yahoo.co.uk": 55, "comcast.net": 50, "msn.com": 45, "outlook.com": 30,
             "btinternet.com": 25, "rocketmail.com": 12, "mail.com": 10}
FREE_MAIL_SHARE = (0.62, 0.33)  # fraud, legit
COUNTRY_EMPTY = (0.07, 0.018)
COUNTRY_NULL = 0.0057
COUNTRY_FOREIGN = (0.10, 0.015)  # organiser country not the currency's
VENUE_MISMATCH = (0.15, 0.03)
VENUE_COUNTRY_EMPTY = 0.066
VENUE_ZERO_COORDS = 0.01

# Copula correlations with the latent score: higher means signals agree more (more separable
# within the data as a whole, but fewer independent clues). Tuned for a realistic AUC.
RHO = {
    "user_age": 0.85, "num_payouts": 0.85, "body_length": 0.55, "name_length": 0.35,
    "days_to_start": 0.55, "mean_cost": 0.35, "gts": 0.35, "n_tiers": 0.35, "binary": 0.35,
    "org_social": 0.45, "user_type": 0.55, "delivery": 0.35, "payout_type": 0.35,
    "channels": 0.35, "text": 0.5,
}

# Number of ticket tiers: probabilities for 1, 2, 3, 4, 5, 6..10, 11..35.
TIER_PMF = {
    "fraud": (0.66, 0.20, 0.075, 0.035, 0.015, 0.012, 0.003),
    "legit": (0.45, 0.22, 0.12, 0.08, 0.05, 0.06, 0.02),
}

# ----------------------------------------------------------------------------------------------
# Word pools for text (fixed; chosen by the seeded generator)
# ----------------------------------------------------------------------------------------------

PARTY_WORDS = ("Party", "Night", "Bash", "Fest", "Festival", "Concert", "Live", "VIP", "Club",
               "Lounge", "Rooftop", "Boat", "Cruise", "Weekend", "Summer", "Splash", "Gala",
               "Ball", "Showcase", "Jam", "Dance", "Takeover", "Experience", "Tour", "Mixer")
PRO_WORDS = ("Workshop", "Conference", "Meetup", "Seminar", "Class", "Course", "Summit",
             "Forum", "Networking", "Breakfast", "Lecture", "Training", "Bootcamp", "Clinic",
             "Retreat", "Symposium", "Webinar", "Session", "Tasting", "Walk", "Run", "Fundraiser",
             "Benefit", "Exhibition", "Open House")
TOPIC_WORDS = ("Annual", "Spring", "Autumn", "Winter", "Charity", "Community", "Startup", "Tech",
               "Yoga", "Wine", "Beer", "Jazz", "Comedy", "Film", "Art", "Photography", "Writing",
               "Marketing", "Design", "Leadership", "Health", "Family", "Kids", "Youth", "Alumni",
               "Marathon", "Cycling", "Garden", "Food", "Music", "Poetry", "Business", "Finance",
               "Real Estate", "Social Media", "Green", "Vintage", "Craft", "Dinner", "Holiday",
               "New Year's Eve", "Halloween", "Valentine's", "Spring Break", "Memorial Day")
PLACE_WORDS = ("NYC", "London", "SF", "Chicago", "Austin", "Toronto", "Sydney", "Boston", "LA",
               "Miami", "Atlanta", "Seattle", "Denver", "Vancouver", "Melbourne", "Brooklyn",
               "Manchester", "DC", "Portland", "Dallas")
FIRST_NAMES = ("James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda",
               "William", "Elizabeth", "David", "Barbara", "Richard", "Susan", "Joseph", "Jessica",
               "Thomas", "Sarah", "Charles", "Karen", "Daniel", "Nancy", "Matthew", "Lisa",
               "Anthony", "Emily", "Mark", "Sophie", "Paul", "Olivia", "Steven", "Chloe",
               "Andrew", "Grace", "Kevin", "Amy", "Brian", "Rachel", "Aisha", "Wei", "Priya",
               "Carlos", "Fatima", "Kwame", "Yuki", "Ines", "Tomasz", "Oluwaseun")
LAST_NAMES = ("Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
              "Wilson", "Anderson", "Taylor", "Thomas", "Moore", "Martin", "Jackson", "Thompson",
              "White", "Harris", "Clark", "Lewis", "Walker", "Hall", "Young", "King", "Wright",
              "Scott", "Green", "Baker", "Adams", "Nelson", "Campbell", "Evans", "Patel",
              "Nguyen", "Kim", "Chen", "Okafor", "Murphy", "O'Brien", "Kowalski", "Rossi")
ORG_SUFFIX = ("Events", "Productions", "Entertainment", "Group", "Society", "Association",
              "Foundation", "Collective", "Club", "Network", "Institute", "Partners", "Media",
              "Promotions", "Presents", "Co.", "Ltd", "Inc.", "LLC", "Team")
SYLLABLES = ("ar", "ben", "cor", "dal", "el", "fin", "gra", "hol", "in", "jet", "kel", "lum",
             "mar", "nov", "or", "pix", "quo", "ras", "sol", "tri", "ul", "ven", "wex", "yor",
             "zen", "bright", "blue", "north", "tech", "arts", "hub", "lab", "works", "city")
STREETS = ("Main St", "Market St", "High Street", "Broadway", "King St", "Queen St", "Oak Ave",
           "Park Ave", "Church Rd", "Station Rd", "Mission St", "Elm St", "George St",
           "Collins St", "Yonge St", "Granville St", "Sunset Blvd", "5th Ave", "Water St")
VENUE_KINDS = ("Hall", "Center", "Theatre", "Hotel", "Club", "Lounge", "Gallery", "Studio",
               "Church", "Library", "Pub", "Ballroom", "Park", "Arena", "Rooftop", "Bar & Grill",
               "Community Centre", "University", "Conference Centre", "Loft")

# (city, lat, lon, state) per country, for venues.
CITIES = {
    "US": (("New York", 40.7128, -74.0060, "NY"), ("San Francisco", 37.7749, -122.4194, "CA"),
           ("Los Angeles", 34.0522, -118.2437, "CA"), ("Chicago", 41.8781, -87.6298, "IL"),
           ("Austin", 30.2672, -97.7431, "TX"), ("Boston", 42.3601, -71.0589, "MA"),
           ("Seattle", 47.6062, -122.3321, "WA"), ("Washington", 38.9072, -77.0369, "DC"),
           ("Atlanta", 33.7490, -84.3880, "GA"), ("Miami", 25.7617, -80.1918, "FL"),
           ("Denver", 39.7392, -104.9903, "CO"), ("Portland", 45.5152, -122.6784, "OR")),
    "GB": (("London", 51.5074, -0.1278, ""), ("Manchester", 53.4808, -2.2426, "Greater Manchester"),
           ("Birmingham", 52.4862, -1.8904, "West Midlands"), ("Edinburgh", 55.9533, -3.1883, ""),
           ("Bristol", 51.4545, -2.5879, "")),
    "CA": (("Toronto", 43.6532, -79.3832, "ON"), ("Vancouver", 49.2827, -123.1207, "BC"),
           ("Montreal", 45.5017, -73.5673, "QC"), ("Calgary", 51.0447, -114.0719, "AB")),
    "AU": (("Sydney", -33.8688, 151.2093, "NSW"), ("Melbourne", -37.8136, 144.9631, "VIC"),
           ("Brisbane", -27.4698, 153.0251, "QLD"), ("Perth", -31.9505, 115.8605, "WA")),
    "NZ": (("Auckland", -36.8485, 174.7633, ""), ("Wellington", -41.2865, 174.7762, "")),
    "IE": (("Dublin", 53.3498, -6.2603, ""),), "DE": (("Berlin", 52.5200, 13.4050, "Berlin"),),
    "FR": (("Paris", 48.8566, 2.3522, ""),), "NL": (("Amsterdam", 52.3676, 4.9041, ""),),
    "MX": (("Mexico City", 19.4326, -99.1332, "CDMX"),), "IN": (("Mumbai", 19.0760, 72.8777, "MH"),),
    "NG": (("Lagos", 6.5244, 3.3792, "Lagos"),), "PH": (("Manila", 14.5995, 120.9842, ""),),
    "ZA": (("Cape Town", -33.9249, 18.4241, "WC"),),
}

SENTENCES_COMMON = (
    "Join us for an evening you will not forget.",
    "Doors open at 7pm and the fun starts at 8pm.",
    "Light refreshments will be served.",
    "Please bring a valid photo ID.",
    "Tickets are non-refundable but transferable.",
    "All ages welcome; under 16s must be accompanied by an adult.",
    "Space is limited, so book early.",
    "For questions, reply to this invitation.",
)
SENTENCES_PARTY = (
    "VIP tables and bottle service available &ndash; call to reserve!",
    "THE BIGGEST PARTY OF THE YEAR!!!",
    "Dress code: dress to impress. No sneakers, no hats.",
    "Open bar from 10pm to midnight for early ticket holders.",
    "Special guest DJs all night long&nbsp;&nbsp;",
    "LIMITED TICKETS - DON'T MISS OUT!",
    "Free entry before 11pm with this ticket.",
    "For table bookings contact the promoter directly.",
    "Line-up to be announced soon. Stay tuned!!",
    "Payment accepted at the door for group packages.",
)
SENTENCES_PRO = (
    "This hands-on workshop covers the essentials in three practical sessions.",
    "Registration includes lunch, coffee breaks and the course materials.",
    "Our speakers bring decades of experience from industry and academia.",
    "You will leave with a certificate of attendance.",
    "Parking is available at the venue; the nearest station is a five-minute walk.",
    "Refunds are available up to 7 days before the event.",
    "All proceeds go to our local community programmes.",
    "The agenda: welcome &amp; introductions, talks, panel discussion, networking.",
    "Members receive a 20% discount &ndash; please log in before registering.",
    "We look forward to seeing you there.",
)
PARAGRAPH_TEMPLATES = (
    "<p>{}</p>",
    "<p><span style=\"font-size: small;\">{}</span></p>",
    "<p style=\"text-align: center;\"><strong>{}</strong></p>",
    "<div><span style=\"font-family: arial, helvetica, sans-serif; color: #333333;\">{}&nbsp;"
    "</span></div>",
    "<p><span style=\"font-size: medium; font-family: tahoma,arial,helvetica,sans-serif;\">{}"
    "</span></p>",
    "<p>&nbsp;</p>\r\n<p>{}</p>",
    "<ul>\r\n<li>{}</li>\r\n</ul>",
    "<p><em>{}</em><br />\r\n</p>",
)


# ----------------------------------------------------------------------------------------------
# Small numeric helpers
# ----------------------------------------------------------------------------------------------

def _copula_uniform(rng: np.random.Generator, latent: np.ndarray, rho: float) -> np.ndarray:
    """Uniform(0,1) draws correlated with the latent score (Gaussian copula), one per event."""
    noise = rng.standard_normal(latent.shape[0])
    return ndtr(rho * latent + math.sqrt(1.0 - rho * rho) * noise)


def _quantile(u: np.ndarray, knots: tuple, log: bool) -> np.ndarray:
    """Map uniforms through a piecewise-linear quantile function (optionally in log1p space)."""
    probs, values = knots
    if log:
        return np.expm1(np.interp(u, probs, np.log1p(values)))
    return np.interp(u, probs, values)


def _class_quantile(u, fraud, field):
    """Values for ``field`` from the fraud or legit quantile function, per event."""
    log = field in LOG_KNOTS
    return np.where(fraud, _quantile(u, Q[field]["fraud"], log), _quantile(u, Q[field]["legit"], log))


def _class_categorical(u, fraud, table):
    """Categorical values per event: u through the class's cumulative shares, in table order."""
    out = np.empty(u.shape[0], dtype=object)
    for cls, mask in (("fraud", fraud), ("legit", ~fraud)):
        values = list(table[cls].keys())
        weights = np.array(list(table[cls].values()), dtype=float)
        cum = np.cumsum(weights / weights.sum())
        idx = np.minimum(np.searchsorted(cum, u[mask], side="right"), len(values) - 1)
        out[mask] = [values[i] for i in idx]
    return out


def _exact_counts(total: int, weights: dict) -> dict:
    """Split ``total`` in proportion to ``weights`` with integer counts (largest remainder)."""
    keys = list(weights)
    w = np.array([weights[k] for k in keys], dtype=float)
    raw = w / w.sum() * total
    counts = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - counts), kind="stable")[: total - counts.sum()]:
        counts[i] += 1
    return dict(zip(keys, counts.tolist()))


def _shuffled_labels(rng, counts: dict) -> list:
    """A shuffled list holding each key exactly ``counts[key]`` times."""
    labels = [k for k, c in counts.items() for _ in range(c)]
    order = rng.permutation(len(labels))
    return [labels[i] for i in order]


# ----------------------------------------------------------------------------------------------
# Latent profile: label, time, latent score
# ----------------------------------------------------------------------------------------------

def _year_bounds(year: int) -> tuple[int, int]:
    """Unix-second range of event creation for a year (data spans 2007-02 to 2013-10)."""
    start = datetime(year, 2 if year == 2007 else 1, 1, tzinfo=timezone.utc)
    end = datetime(2013, 11, 1, tzinfo=timezone.utc) if year == 2013 else datetime(
        year + 1, 1, 1, tzinfo=timezone.utc)
    return int(start.timestamp()), int(end.timestamp())


def draw_profiles(rng: np.random.Generator, n: int) -> dict:
    """Per-event latent profile: fraud label, acct_type, creation time, latent score, sub-type."""
    year_counts = _exact_counts(n, YEAR_SHARE)
    years = np.array(_shuffled_labels(rng, year_counts), dtype=int)
    fraud = np.zeros(n, dtype=bool)
    created = np.zeros(n, dtype=np.int64)
    for year, count in year_counts.items():
        idx = np.flatnonzero(years == year)
        n_fraud = int(round(count * YEAR_FRAUD_RATE[year]))
        fraud[rng.choice(idx, size=n_fraud, replace=False)] = True
        lo, hi = _year_bounds(year)
        created[idx] = rng.integers(lo, hi, size=idx.size)
    acct = np.empty(n, dtype=object)
    acct[fraud] = _shuffled_labels(rng, _exact_counts(int(fraud.sum()), ACCT_FRAUD))
    acct[~fraud] = _shuffled_labels(rng, _exact_counts(int((~fraud).sum()), ACCT_LEGIT))
    latent = rng.standard_normal(n)
    profile = np.where(fraud, np.where(latent > 0.674, "sophisticated", "blatant"),
                       np.where(latent < -1.08, "risky", "established"))
    return {"n": n, "fraud": fraud, "acct_type": acct, "event_created": created,
            "latent": latent, "profile": profile}


# ----------------------------------------------------------------------------------------------
# Vectorised numeric fields
# ----------------------------------------------------------------------------------------------

def _binary(rng, prof, name, rho=None):
    """0/1 per event with the class rates of RATES[name], tied to the latent score."""
    fraud_rate, legit_rate, direction = RATES[name]
    u = _copula_uniform(rng, prof["latent"] * direction, RHO["binary"] if rho is None else rho)
    rate = np.where(prof["fraud"], fraud_rate, legit_rate)
    return (u > 1.0 - rate).astype(int)


def _tier_counts(u, fraud):
    """Number of ticket tiers (1..35) from the class pmf, larger u giving more tiers."""
    out = np.empty(u.shape[0], dtype=int)
    for cls, mask in (("fraud", fraud), ("legit", ~fraud)):
        p = TIER_PMF[cls]
        pmf = np.concatenate([p[:5], np.full(5, p[5] / 5), np.full(25, p[6] / 25)])
        cum = np.cumsum(pmf / pmf.sum())
        out[mask] = np.minimum(np.searchsorted(cum, u[mask], side="right"), 34) + 1
    return out


def _times(rng, prof, days_to_start):
    """event_start/end/published, user_created and the derived durations, vectorised."""
    n, fraud = prof["n"], prof["fraud"]
    created = prof["event_created"]
    start = created + np.round(days_to_start * DAY / 1800.0).astype(np.int64) * 1800
    start = np.maximum(start, created + 900)
    hours = np.exp(rng.normal(np.where(fraud, math.log(4.0), math.log(3.5)), 0.55))
    multi_day = rng.random(n) < 0.08
    hours = np.where(multi_day, rng.uniform(24, 96, n), hours)
    end = start + np.maximum(1, np.round(hours * 2)).astype(np.int64) * 1800
    # Publication: fraud goes live within minutes; legit organisers often polish the page for a
    # while (a share of the lead time), so sale_duration is ~0.93 x days-to-start for legit
    # (DATA.md: p50 35 vs 37, p90 105 vs 114). A few events are republished after they start.
    lead = (start - created).astype(float)
    quick = rng.random(n) < np.where(fraud, 0.8, 0.35)
    delay = np.where(quick, rng.integers(30, 3600, n), lead * rng.uniform(0.0, np.where(fraud, 0.1, 0.2)))
    published = np.minimum(created + delay.astype(np.int64), np.maximum(start - 600, created + 30))
    late = rng.random(n) < np.where(fraud, 0.03, 0.01)
    published = np.where(late, start + rng.integers(DAY // 2, 12 * DAY, n), published)
    published = published.astype(float)
    sale_duration = np.floor((start - published) / DAY)
    pub_state = rng.random(n)
    published_null = pub_state < 99 / 14337
    published_zero = (pub_state >= 99 / 14337) & (pub_state < 139 / 14337)
    sale_null = published_null | published_zero | (rng.random(n) < 16 / 14337)
    return {
        "event_start": start, "event_end": end, "approx_payout_date": end + 5 * DAY,
        "event_published": np.where(published_null, np.nan, np.where(published_zero, 0.0, published)),
        "sale_duration": np.where(sale_null, np.nan, sale_duration),
        "sale_duration2": np.floor((start - created) / DAY).astype(np.int64),
    }


def draw_numeric(rng: np.random.Generator, prof: dict) -> dict:
    """Every per-event number and category, as arrays, from the latent profile."""
    n, fraud, latent = prof["n"], prof["fraud"], prof["latent"]
    cols: dict = {}
    cu = functools.partial(_copula_uniform, rng, latent)

    age = np.floor(_class_quantile(cu(RHO["user_age"]), fraud, "user_age")).astype(np.int64)
    # An account cannot predate the site.
    age = np.minimum(age, (prof["event_created"] - SITE_START) // DAY)
    cols["user_age"] = age
    cols["user_created"] = prof["event_created"] - age * DAY - rng.integers(0, DAY, n)
    payouts = np.floor(_class_quantile(cu(RHO["num_payouts"]), fraud, "num_payouts")).astype(np.int64)
    cols["num_payouts"] = np.where(age < 1, 0, np.minimum(payouts, age))

    body = _class_quantile(cu(RHO["body_length"]), fraud, "body_length")
    cols["body_target"] = np.round(body).astype(int)
    name = _class_quantile(cu(RHO["name_length"]), fraud, "name_length")
    cols["name_target"] = np.maximum(2, np.round(name)).astype(int)
    days = _class_quantile(cu(RHO["days_to_start"]), fraud, "days_to_start")
    cols.update(_times(rng, prof, days))

    cols["mean_cost"] = _class_quantile(1.0 - cu(RHO["mean_cost"]), fraud, "mean_cost")
    cols["gts_target"] = _class_quantile(cu(RHO["gts"]), fraud, "gts")
    cols["n_tiers"] = _tier_counts(cu(RHO["n_tiers"]), fraud)

    social = cu(RHO["org_social"])
    cols["org_facebook"] = np.floor(_class_quantile(social, fraud, "org_facebook"))
    cols["org_twitter"] = np.floor(_class_quantile(np.clip(social + rng.normal(0, 0.05, n), 0, 1),
                                                  fraud, "org_twitter"))
    social_null = rng.random(n) < 59 / 14337
    cols["org_facebook"] = np.where(social_null, np.nan, cols["org_facebook"])
    cols["org_twitter"] = np.where(social_null, np.nan, cols["org_twitter"])

    for name in ("has_logo", "has_analytics", "fb_published", "show_map", "all_caps_name",
                 "empty_org_desc", "empty_org_name", "payee_name", "venue_null"):
        cols[name] = _binary(rng, prof, name)
    header_null = rng.random(n) < np.where(fraud, HAS_HEADER_NULL[0], HAS_HEADER_NULL[1])
    cols["has_header"] = np.where(header_null, np.nan, _binary(rng, prof, "has_header_one").astype(float))
    cols["listed"] = np.where(rng.random(n) < 0.85, "y", "n")

    cols["channels"] = _class_categorical(cu(RHO["channels"]), fraud, CHANNELS)
    cols["user_type"] = _class_categorical(cu(RHO["user_type"]), fraud, USER_TYPE)
    cols["delivery_method"] = _class_categorical(cu(RHO["delivery"]), fraud, DELIVERY)
    cols["payout_type"] = _class_categorical(cu(RHO["payout_type"]), fraud, PAYOUT_TYPE)
    cols["currency"] = _class_categorical(rng.random(n), fraud, CURRENCY)
    cols["party_theme"] = cu(RHO["text"]) < np.where(fraud, 0.6, 0.3)
    return cols


# ----------------------------------------------------------------------------------------------
# Text and nested structures (record by record)
# ----------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _paragraph_pools() -> dict:
    """HTML paragraphs for descriptions, built once from a fixed generator (seed-independent)."""
    rng = np.random.default_rng(20130901)
    pools = {}
    for theme, extra in (("party", SENTENCES_PARTY), ("pro", SENTENCES_PRO)):
        sentences = SENTENCES_COMMON + extra + extra
        paragraphs = []
        for _ in range(300):
            k = int(rng.integers(1, 5))
            text = " ".join(sentences[int(i)] for i in rng.integers(0, len(sentences), k))
            template = PARAGRAPH_TEMPLATES[int(rng.integers(0, len(PARAGRAPH_TEMPLATES)))]
            paragraphs.append(template.format(text))
        pools[theme] = tuple(paragraphs)
    return pools


@functools.lru_cache(maxsize=1)
def _company_domains() -> tuple:
    """A long tail of organisation email domains (fixed list, seed-independent)."""
    rng = np.random.default_rng(7)
    tlds = (".com", ".com", ".com", ".org", ".net", ".co.uk", ".ca", ".com.au", ".edu", ".org.uk")
    names = set()
    while len(names) < 6000:
        k = int(rng.integers(2, 4))
        stem = "".join(SYLLABLES[int(i)] for i in rng.integers(0, len(SYLLABLES), k))
        names.add(stem + tlds[int(rng.integers(0, len(tlds)))])
    return tuple(sorted(names))


def _pick(rng, seq):
    """One element of a sequence chosen by the generator."""
    return seq[int(rng.integers(0, len(seq)))]


def make_description(rng, target: int, party: bool) -> str:
    """An HTML description of exactly ``target`` characters ('' when 0), with \\r\\n and &nbsp;."""
    if target <= 0:
        return ""
    pool = _paragraph_pools()["party" if party else "pro"]
    parts, length = [], 0
    while length < target:
        para = pool[int(rng.integers(0, len(pool)))]
        parts.append(para)
        length += len(para) + 2
    return "\r\n".join(parts)[:target]


def make_name(rng, target: int, party: bool, caps: bool) -> str:
    """An event name of about ``target`` characters; fraud names are shorter and often ALL CAPS."""
    words = PARTY_WORDS if party else PRO_WORDS
    name = f"{_pick(rng, TOPIC_WORDS)} {_pick(rng, words)}"
    extras = [f"{_pick(rng, PLACE_WORDS)}", str(int(rng.integers(2008, 2015))),
              f"- {_pick(rng, PLACE_WORDS)} Edition", f"with {make_person(rng)}",
              f"at The {_pick(rng, LAST_NAMES)} {_pick(rng, VENUE_KINDS)}", "(Early Bird)",
              f"{_pick(rng, TOPIC_WORDS)} {_pick(rng, words)}", "Vol. 2", "Series",
              f"& {_pick(rng, TOPIC_WORDS)} {_pick(rng, words)}"]
    for j in rng.permutation(len(extras)):
        if len(name) >= target:
            break
        name = f"{name} {extras[int(j)]}"
    while len(name) < target:  # very long names repeat the theme, as some organisers do
        name = f"{name} | {_pick(rng, TOPIC_WORDS)} {_pick(rng, words)}"
    name = name[:target].rstrip(" -(|&,")
    return name.upper() if caps else name


def make_org_name(rng) -> str:
    """An organiser name such as 'Bright Lab Events'."""
    stem = "".join(_pick(rng, SYLLABLES) for _ in range(int(rng.integers(1, 3)))).title()
    return f"{stem} {_pick(rng, ORG_SUFFIX)}"


def make_org_desc(rng, org_name: str) -> str:
    """A short HTML organiser description."""
    line = (f"{org_name or 'We'} has been bringing people together since "
            f"{int(rng.integers(1995, 2013))}.")
    if rng.random() < 0.5:
        return f"<p>{line}</p>"
    return (f"<p><span style=\"font-size: small;\">{line}&nbsp;Follow us for news about upcoming "
            f"events.</span></p>\r\n<p>&nbsp;</p>")


def make_person(rng) -> str:
    """A person's name for payees and payout records."""
    return f"{_pick(rng, FIRST_NAMES)} {_pick(rng, LAST_NAMES)}"


def choose_country(rng, currency: str, fraud: bool) -> str | None:
    """Organiser country: mostly the currency's country; '' or null sometimes (more for fraud)."""
    r = rng.random()
    if r < COUNTRY_NULL:
        return None
    if r < COUNTRY_NULL + COUNTRY_EMPTY[0 if fraud else 1]:
        return ""
    if rng.random() < COUNTRY_FOREIGN[0 if fraud else 1]:
        return _pick(rng, OTHER_COUNTRIES[: 20 if fraud else len(OTHER_COUNTRIES)])
    if currency == "EUR":
        return _pick(rng, EURO_COUNTRIES)
    return CURRENCY_COUNTRY[currency] if rng.random() < 0.985 else _pick(rng, ("US", "GB", "CA"))


def make_email_domain(rng, fraud: bool) -> str:
    """Free-mail for most fraud and a third of legit; otherwise an organisation's domain."""
    if rng.random() < FREE_MAIL_SHARE[0 if fraud else 1]:
        keys = tuple(FREE_MAIL)
        weights = np.array([FREE_MAIL[k] for k in keys], dtype=float)
        return keys[int(np.searchsorted(np.cumsum(weights / weights.sum()), rng.random(), side="right"))]
    domains = _company_domains()
    # A few organisations run many events (1/rank weights over 200 busy ones), most run one or two.
    if rng.random() < 0.1:
        rank = int(np.searchsorted(_busy_org_cdf(), rng.random(), side="right"))
        return domains[rank * 29 % len(domains)]
    return domains[int(rng.integers(0, len(domains)))]


@functools.lru_cache(maxsize=1)
def _busy_org_cdf() -> np.ndarray:
    """Cumulative 1/rank weights over the 200 busiest organisations' domains."""
    weights = 1.0 / np.arange(1, 201)
    return np.cumsum(weights / weights.sum())[:-1]


def make_venue(rng, country: str | None, fraud: bool, null: bool) -> dict:
    """venue_* fields: all null together, or a named place with coordinates near a city."""
    keys = ("venue_address", "venue_country", "venue_latitude", "venue_longitude", "venue_name",
            "venue_state")
    if null:
        return dict.fromkeys(keys)
    home = country if country in CITIES else "US"
    if rng.random() < VENUE_MISMATCH[0 if fraud else 1]:
        home = _pick(rng, tuple(sorted(CITIES)))
    city, lat, lon, state = _pick(rng, CITIES[home])
    venue_country = home
    if rng.random() < VENUE_COUNTRY_EMPTY:
        venue_country, state = "", ""
    elif home in ("US", "CA", "AU") and rng.random() < 0.035:
        state = ""
    if rng.random() < VENUE_ZERO_COORDS:
        lat, lon = 0.0, 0.0
    else:
        lat, lon = round(lat + rng.normal(0, 0.05), 7), round(lon + rng.normal(0, 0.05), 7)
    kind = _pick(rng, VENUE_KINDS)
    name = f"The {_pick(rng, LAST_NAMES)} {kind}" if rng.random() < 0.5 else f"{city} {kind}"
    return {"venue_address": f"{int(rng.integers(1, 2000))} {_pick(rng, STREETS)}",
            "venue_country": venue_country, "venue_latitude": float(lat),
            "venue_longitude": float(lon), "venue_name": name, "venue_state": state}


def _round_price(c: float) -> float:
    """Prices the way organisers set them: whole units above 5, halves below."""
    return float(round(c)) if c >= 5 else round(c * 2) / 2


def make_ticket_types(rng, object_id, n_tiers, mean_cost, gts_target, fraud, voided):
    """Ticket tiers and what sold; returns (tiers, gts, tickets_sold_before_voiding)."""
    if n_tiers == 1:
        factors = np.ones(1)
    else:
        factors = np.sort(np.exp(rng.normal(0, 0.6, n_tiers)))
        factors /= factors.mean()
    costs = [_round_price(mean_cost * f) for f in factors]
    if not fraud and n_tiers > 1 and rng.random() < 0.1:
        costs[0] = 0.0  # a free RSVP tier beside paid ones
    if max(costs) <= 0:
        costs[-1] = 5.0
    median_total = 150 if fraud else 35
    totals = np.maximum(1, np.round(np.exp(rng.normal(math.log(median_total), 0.9, n_tiers)))).astype(int)
    sold = np.zeros(n_tiers, dtype=int)
    paid = [i for i, c in enumerate(costs) if c > 0]
    if gts_target > 0:
        weights = rng.dirichlet(np.ones(len(paid)))
        for w, i in zip(weights, paid):
            sold[i] = int(round(gts_target * w / costs[i]))
        if sold.sum() == 0:
            cheapest = min(paid, key=lambda i: costs[i])
            sold[cheapest] = 1
    totals = np.maximum(totals, sold)
    gross = float(sum(c * s for c, s in zip(costs, sold)))
    gts = round(gross * float(rng.uniform(0.9, 1.0)), 2) if gross > 0 else 0.0
    tiers = []
    for i in range(n_tiers):
        tiers.append({"event_id": object_id, "cost": costs[i],
                      "availability": 2 if rng.random() < 0.04 else 1,
                      "quantity_total": int(totals[i]),
                      "quantity_sold": 0 if voided else int(sold[i])})
    return tiers, gts, int(sold.sum())


def _timestamp_text(ts: int) -> str:
    """Unix seconds as 'YYYY-MM-DD HH:MM:SS' (UTC), the payout history's format."""
    return datetime.fromtimestamp(int(ts), tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def make_previous_payouts(rng, rec: dict, uid: int, payee: str, fraud: bool, profile: str) -> list:
    """The user's payout history as extracted (late 2013): a few before the event, most after.

    Entries before ``event_created`` are the user's earlier payouts (at most 5 of
    ``num_payouts``). After it come this event's own payout (when tickets sold, the event ended
    and, for blatant fraud, rarely: the account is usually stopped first) and later events' payouts.
    """
    created, object_id = rec["event_created"], rec["object_id"]
    n_before = min(rec["num_payouts"], 5)
    entries = list(zip(  # (time, event id, amount)
        rng.integers(rec["user_created"], created, n_before).tolist(),
        (object_id - rng.integers(1, 300_000, n_before)).tolist(),
        rng.uniform(50, 3000, n_before).tolist()))
    if rec["gts"] > 0 and rec["approx_payout_date"] < EXTRACTION_TIME:
        paid_prob = 0.12 if profile == "blatant" else (0.5 if fraud else 0.9)
        if rng.random() < paid_prob:
            entries.append((rec["approx_payout_date"] + int(rng.integers(0, 3 * DAY)), object_id,
                            rec["gts"] * 0.935))  # gross sales less fees
    if profile != "blatant":
        years_active = max(rec["user_age"], 30) / 365.0
        rate = (rec["num_payouts"] + 1) / years_active * (0.4 if fraud else 1.0)
        horizon = max(0, EXTRACTION_TIME - created) / (365.0 * DAY)
        extra = min(int(rng.poisson(min(rate * horizon, 12))), 12)
        entries += zip(rng.integers(created, max(created + 1, EXTRACTION_TIME), extra).tolist(),
                       (object_id + rng.integers(1, 300_000, extra)).tolist(),
                       rng.uniform(50, 3000, extra).tolist())
    entries.sort()
    zip_code = str(int(rng.integers(10000, 99999)))
    return [{"name": payee, "created": _timestamp_text(t), "country": rec["country"] or "",
             "amount": round(amount, 2), "state": rec["venue_state"] or "",
             "address": rec["venue_address"] or "", "zip_code": zip_code, "uid": uid, "event": event}
            for t, event, amount in entries]


# ----------------------------------------------------------------------------------------------
# Putting a record together
# ----------------------------------------------------------------------------------------------

def _object_ids(rng, created: np.ndarray) -> np.ndarray:
    """Unique event ids that grow with creation time (~500k to ~8M), as a real sequence does."""
    order = np.argsort(created, kind="stable")
    gaps = rng.integers(1, 2 * 7_500_000 // max(1, created.size), created.size)
    ids = np.empty(created.size, dtype=np.int64)
    ids[order] = 500_000 + np.cumsum(gaps)
    return ids


def _user_ids(rng, user_created: np.ndarray) -> np.ndarray:
    """Unique user ids that grow with account creation time."""
    order = np.argsort(user_created, kind="stable")
    ids = np.empty(user_created.size, dtype=np.int64)
    ids[order] = 1_000_000 + np.cumsum(rng.integers(1, 3000, user_created.size))
    return ids


def _build_record(rng, i, prof, cols, object_id, uid) -> dict:
    """One 44-key record from the drawn columns, building text, venue, tiers and payouts."""
    fraud = bool(prof["fraud"][i])
    party = bool(cols["party_theme"][i])
    currency = cols["currency"][i]
    country = choose_country(rng, currency, fraud)
    name = make_name(rng, int(cols["name_target"][i]), party, bool(cols["all_caps_name"][i]))
    description = make_description(rng, int(cols["body_target"][i]), party)
    org_name = "" if cols["empty_org_name"][i] else make_org_name(rng)
    org_desc = "" if cols["empty_org_desc"][i] else make_org_desc(rng, org_name)
    payee = make_person(rng) if rng.random() < 0.7 else (org_name or make_person(rng))
    voided = fraud and cols["gts_target"][i] > 0 and rng.random() < 0.35
    tiers, gts, tickets_sold = make_ticket_types(
        rng, object_id, int(cols["n_tiers"][i]), float(cols["mean_cost"][i]),
        float(cols["gts_target"][i]), fraud, voided)
    per_order = 1.0 + float(rng.gamma(2.0, 0.25 if fraud else 0.45))
    num_order = 0 if tickets_sold == 0 else max(1, int(round(tickets_sold / per_order)))
    delivery = cols["delivery_method"][i]
    rec = {
        "acct_type": prof["acct_type"][i],
        "approx_payout_date": int(cols["approx_payout_date"][i]),
        "body_length": len(description),
        "channels": int(cols["channels"][i]),
        "country": country,
        "currency": currency,
        "delivery_method": None if delivery is None else float(delivery),
        "description": description,
        "email_domain": make_email_domain(rng, fraud),
        "event_created": int(prof["event_created"][i]),
        "event_end": int(cols["event_end"][i]),
        "event_published": _float_or_none(cols["event_published"][i]),
        "event_start": int(cols["event_start"][i]),
        "fb_published": int(cols["fb_published"][i]),
        "gts": gts,
        "has_analytics": int(cols["has_analytics"][i]),
        "has_header": _float_or_none(cols["has_header"][i]),
        "has_logo": int(cols["has_logo"][i]),
        "listed": str(cols["listed"][i]),
        "name": name,
        "name_length": len(name),
        "num_order": num_order,
        "num_payouts": int(cols["num_payouts"][i]),
        "object_id": object_id,
        "org_desc": org_desc,
        "org_facebook": _float_or_none(cols["org_facebook"][i]),
        "org_name": org_name,
        "org_twitter": _float_or_none(cols["org_twitter"][i]),
        "payee_name": payee if cols["payee_name"][i] else "",
        "payout_type": cols["payout_type"][i],
        "previous_payouts": [],
        "sale_duration": _float_or_none(cols["sale_duration"][i]),
        "sale_duration2": int(cols["sale_duration2"][i]),
        "show_map": int(cols["show_map"][i]),
        "ticket_types": tiers,
        "user_age": int(cols["user_age"][i]),
        "user_created": int(cols["user_created"][i]),
        "user_type": int(cols["user_type"][i]),
    }
    rec.update(make_venue(rng, country, fraud, bool(cols["venue_null"][i])))
    rec["previous_payouts"] = make_previous_payouts(rng, rec, uid, payee, fraud, prof["profile"][i])
    return rec


def _float_or_none(value) -> float | None:
    """A Python float, or None for NaN (the training shape writes missing values as null)."""
    value = float(value)
    return None if math.isnan(value) else value


def generate_events(n: int = 14337, seed: int = 0) -> list[dict]:
    """``n`` synthetic 44-key events (missing values None), deterministic for ``seed``."""
    if n < 1:
        raise ValueError("n must be at least 1")
    return generate_with_profiles(n, seed)[0]


def generate_with_profiles(n: int = 14337, seed: int = 0) -> tuple[list[dict], list[str], list[float]]:
    """Events plus each one's latent profile name and latent score (same events as generate_events)."""
    rng = np.random.default_rng(seed)
    prof = draw_profiles(rng, n)
    cols = draw_numeric(rng, prof)
    object_ids = _object_ids(rng, prof["event_created"]).tolist()
    user_ids = _user_ids(rng, cols["user_created"]).tolist()
    records = [_build_record(rng, i, prof, cols, object_ids[i], user_ids[i]) for i in range(n)]
    return records, [str(p) for p in prof["profile"]], prof["latent"].tolist()


# ----------------------------------------------------------------------------------------------
# The live shapes
# ----------------------------------------------------------------------------------------------

def to_live(record: dict, shape: int = 43, sequence_number: int = 0) -> dict:
    """The record as the stream sends it: no acct_type, missing values NaN, gap columns float.

    Every missing top-level value (numbers and strings alike, e.g. ``venue_name``) becomes
    ``float('nan')``, which ``json.dumps`` writes as a bare ``NaN`` token, as the pandas-fed stream
    does; nested lists are kept as they are. The record passed in is not changed.

    shape=43: every field but acct_type. shape=38: the later feed (LIVE_FIELDS_38: no
    approx_payout_date, gts, num_order, num_payouts, sale_duration2, listed; no quantity_sold
    in ticket_types; plus sequence_number). shape=36: the older examples (LIVE_FIELDS_36: the
    38-shape without sequence_number and has_header).
    """
    fields = {43: LIVE_FIELDS_43, 38: LIVE_FIELDS_38, 36: LIVE_FIELDS_36}.get(shape)
    if fields is None:
        raise ValueError(f"shape must be 43, 38 or 36, got {shape!r}")
    out = {}
    for key in fields:
        if key == "sequence_number":
            out[key] = int(sequence_number)
            continue
        value = record.get(key)
        if value is None:
            value = float("nan")
        elif key in LIVE_FLOAT_FIELDS:
            value = float(value)
        elif key == "ticket_types" and shape != 43:
            value = [{k: v for k, v in tier.items() if k != "quantity_sold"} for tier in value]
        out[key] = value
    return out


# ----------------------------------------------------------------------------------------------
# Example events for the scoring CLI
# ----------------------------------------------------------------------------------------------

# test_script_examples.json: (profile, how many, pick the lowest latent score?) in file order.
# Blatant fraud with the lowest latent score is clearly risky; established legit with the highest
# is clearly fine; sophisticated fraud and risky-looking legit near the middle are borderline.
EXAMPLE_PLAN = (("blatant", 3, "lowest"), ("established", 3, "highest"),
                ("sophisticated", 2, "middle"), ("risky", 2, "middle"))
EXAMPLE_SEED = 2024


def make_examples(seed: int = EXAMPLE_SEED, n_pool: int = 600) -> list[dict]:
    """10 live-shape examples (clearly risky, clearly fine, borderline), rebuildable from a seed.

    Short events are preferred so the file stays small. At least one example carries NaN (a
    missing value) and the last one is in the 38-key later shape.
    """
    records, profiles, latent = generate_with_profiles(n_pool, seed)
    chosen = []
    for profile, count, pick in EXAMPLE_PLAN:
        pool = [(score, r) for r, p, score in zip(records, profiles, latent)
                if p == profile and r["body_length"] <= 2000]
        pool.sort(key=lambda item: item[0])
        if pick == "highest":
            pool.reverse()
        elif pick == "middle":
            pool = pool[len(pool) // 2 - count // 2:]
        chosen.extend(r for _, r in pool[:count])
    if not any(r["has_header"] is None for r in chosen):
        chosen[0] = dict(chosen[0], has_header=None)
    live = [to_live(r) for r in chosen[:-1]]
    live.append(to_live(chosen[-1], shape=38, sequence_number=1))
    return live


# ----------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------

def write_events(records: list[dict], path: Path, fmt: str) -> None:
    """Write records as one JSON array or as JSON lines (NaN tokens allowed, like the stream)."""
    with open(path, "w", encoding="utf-8") as handle:
        if fmt == "jsonl":
            for record in records:
                handle.write(json.dumps(record) + "\n")
        else:
            json.dump(records, handle)


def main(argv: list[str] | None = None) -> int:
    """Command line: generate events (training or live shape) or the example file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=14337, help="number of events")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same bytes)")
    parser.add_argument("--out", type=Path, help="output file")
    parser.add_argument("--live", action="store_true", help="write the 43-key live shape")
    parser.add_argument("--format", choices=("json", "jsonl"), default="json")
    parser.add_argument("--examples", type=Path, metavar="PATH",
                        help="write the scoring CLI's example events to PATH and stop")
    args = parser.parse_args(argv)
    if args.examples:
        with open(args.examples, "w", encoding="utf-8") as handle:
            json.dump(make_examples(), handle, indent=1)
            handle.write("\n")
        return 0
    if args.out is None:
        parser.error("--out is required (or use --examples)")
    records = generate_events(args.n, args.seed)
    if args.live:
        records = [to_live(r) for r in records]
    write_events(records, args.out, args.format)
    return 0


if __name__ == "__main__":
    sys.exit(main())
