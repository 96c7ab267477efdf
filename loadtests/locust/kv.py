"""Key-value tasks: single and batched reads and writes, inserts and deletes.

Reads and updates pick preloaded keys with the configured distribution; inserts add
keys of the user's own (with ``if_absent``) and deletes remove them oldest first, so a
write-heavy run does not grow the map without bound.
"""

from __future__ import annotations

from loadtests.locust.dataset import kv_key, kv_value
from loadtests.locust.session import Session

GET = "kv.get"
GET_MANY = "kv.get_many"
PUT = "kv.put"
PUT_MANY = "kv.put_many"
INSERT = "kv.insert"
DELETE = "kv.delete"


def get(session: Session) -> None:
    session.client.named(GET).get(session.maps.kv, kv_key(session.keys.index()))


def get_many(session: Session) -> None:
    keys = [kv_key(index) for index in session.keys.distinct(session.settings.batch)]
    session.client.named(GET_MANY).get_many(session.maps.kv, keys)


def put(session: Session) -> None:
    index = session.keys.index()
    value = kv_value(index, session.settings, revision=session.rng.randrange(1 << 30))
    session.client.named(PUT).put(session.maps.kv, kv_key(index), value)


def put_many(session: Session) -> None:
    revision = session.rng.randrange(1 << 30)
    items = {
        kv_key(index): kv_value(index, session.settings, revision)
        for index in session.keys.distinct(session.settings.batch)
    }
    session.client.named(PUT_MANY).put_many(session.maps.kv, items)


def insert(session: Session) -> None:
    key = session.new_key()
    value = kv_value(session.inserts, session.settings)
    session.client.named(INSERT).put(session.maps.kv, key, value, if_absent=True)
    session.inserted.append(key)


def delete(session: Session) -> None:
    # With nothing inserted yet, deleting a key that is not there is still a delete call.
    key = session.inserted.popleft() if session.inserted else session.new_key()
    session.client.named(DELETE).delete(session.maps.kv, key)
