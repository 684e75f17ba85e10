"""Drives paymirror through the client openapi-python-client generated from /openapi.json.

Usage: generated_client.py <directory holding paymirror_client> <base url> <api token> <payin id>

Reads the payin, pages through every payin two at a time and follows the change feed
from its start, each through the generated functions and models (which refuse answers
their schemas do not allow). Prints one JSON object of what it read.
"""
import json
import sys

sys.path.insert(0, sys.argv[1])

from paymirror_client import AuthenticatedClient  # noqa: E402
from paymirror_client.api.changes import follow_changes  # noqa: E402
from paymirror_client.api.payins import get_payin, list_payins  # noqa: E402
from paymirror_client.models import ChangesPage, ErrorBody, Page, PaymentDocument  # noqa: E402
from paymirror_client.types import UNSET  # noqa: E402

base_url, token, payin_id = sys.argv[2:5]
client = AuthenticatedClient(base_url=base_url, token=token, raise_on_unexpected_status=True)

payin = get_payin.sync(client=client, id=payin_id)
assert isinstance(payin, PaymentDocument), payin
unknown = get_payin.sync(client=client, id="NEVER-SEEN-1")
assert isinstance(unknown, ErrorBody), unknown

listed, pages, cursor = [], 0, UNSET
while True:
    page = list_payins.sync(client=client, limit=2, cursor=cursor)
    assert isinstance(page, Page), page
    listed += [p.id for p in page.items]
    pages += 1
    if not page.next_cursor:
        break
    cursor = page.next_cursor

changes, after = [], "c0"
while True:
    page = follow_changes.sync(client=client, after=after, limit=3, wait=0)
    assert isinstance(page, ChangesPage), page
    if not page.items:
        break
    changes += [[c.id, c.status, c.previous_status] for c in page.items]
    after = page.next_cursor

print(json.dumps({
    "payin": {"id": payin.id, "status": payin.status, "amount": payin.amount,
              "final": payin.final, "syncState": payin.sync.state.value},
    "unknown": {"status": unknown.status, "name": unknown.name},
    "listed": listed,
    "pages": pages,
    "changes": changes,
}))
