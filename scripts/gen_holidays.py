"""Regenerates engine/data/holidays.csv, the public-holiday calendars Custos ships.

Sources, both checkable by anyone:
- the 30 EEA states: the `holidays` package from PyPI (https://pypi.org/project/holidays/),
  version recorded in the file's header, national holidays only (no regional ones);
- `EU`, the Union institutions in Brussels: the holidays the Commission sets for its staff
  each year (published in the Official Journal, C series), which follow a fixed pattern:
  1 and 2 January, Holy Thursday, Good Friday, Easter Monday, 1 May, 9 May (Europe Day),
  Ascension Day and the Friday after it, Whit Monday, 21 July (Belgian national day),
  15 August, 1 and 2 November, and 24 to 31 December.

Usage: python scripts/gen_holidays.py > engine/data/holidays.csv   (needs `pip install holidays`)
"""
import datetime as dt

import holidays
from dateutil.easter import easter

YEARS = range(2018, 2031)
EEA = "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IS IT LI LT LU LV MT NL NO PL PT RO SE SI SK".split()


def eu_institutions(year):
    e = easter(year)
    days = {
        dt.date(year, 1, 1): "New Year's Day",
        dt.date(year, 1, 2): "Day after New Year's Day",
        e - dt.timedelta(days=3): "Holy Thursday",
        e - dt.timedelta(days=2): "Good Friday",
        e + dt.timedelta(days=1): "Easter Monday",
        dt.date(year, 5, 1): "Labour Day",
        dt.date(year, 5, 9): "Europe Day",
        e + dt.timedelta(days=39): "Ascension Day",
        e + dt.timedelta(days=40): "Friday after Ascension Day",
        e + dt.timedelta(days=50): "Whit Monday",
        dt.date(year, 7, 21): "Belgian National Day",
        dt.date(year, 8, 15): "Assumption",
        dt.date(year, 11, 1): "All Saints' Day",
        dt.date(year, 11, 2): "All Souls' Day",
    }
    for d in range(24, 32):
        days.setdefault(dt.date(year, 12, d), "End-of-year holidays")
    return days


print(f"# calendar,date,name: EEA states from python-holidays {holidays.__version__}; EU from the Commission's pattern (see scripts/gen_holidays.py)")
print("calendar,date,name")
rows = []
for code in EEA:
    for d, name in holidays.country_holidays(code, years=YEARS).items():
        rows.append((code, d, name))
for y in YEARS:
    for d, name in eu_institutions(y).items():
        rows.append(("EU", d, name))
for code, d, name in sorted(rows):
    name = name.replace('"', "'")
    print(f'{code},{d.isoformat()},"{name}"')
