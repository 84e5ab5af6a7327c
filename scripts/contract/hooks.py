"""Schemathesis hooks for Aegis's contract run (scripts/test.sh).

The OpenAPI document states every rule JSON Schema can express. Two rules it cannot are made
true of the generated data here, so that "schema-valid request rejected" means a real drift:
  * a card number passes the Luhn check (the last digit is set to the check digit);
  * a timestamp is not more than a day ahead of the server's clock (later ones become now).
Only values of the right type and shape are touched, so schema-invalid data stays invalid.
"""
import datetime
import re
import time

import schemathesis

CARD = re.compile(r"^[0-9]{12,19}$")
DATE_TIME = re.compile(r"^(\d{4,})-")
TIME_FIELDS = ("timestamp", "reported_at")


def luhn_fixed(digits):
    body = digits[:-1]
    total = 0
    for i, d in enumerate(reversed(body)):
        n = int(d)
        if i % 2 == 0:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return body + str((10 - total % 10) % 10)


def fix(item):
    if not isinstance(item, dict):
        return item
    card = item.get("card_num")
    if isinstance(card, str) and CARD.match(card):
        item["card_num"] = luhn_fixed(card)
    now = int(time.time())
    for field in TIME_FIELDS:
        value = item.get(field)
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)) and value > now + 3600:
            item[field] = now
        elif isinstance(value, str) and (m := DATE_TIME.match(value)) and int(m.group(1)) >= datetime.date.today().year:
            item[field] = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
    return item


@schemathesis.hook
def map_body(ctx, body):
    if isinstance(body, list):
        return [fix(item) for item in body]
    return fix(body)
