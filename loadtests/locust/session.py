"""What one simulated user carries between tasks: its metered client, randomness and keys."""

from __future__ import annotations

import random
import uuid
from collections import deque
from dataclasses import dataclass, field

from loadtests.locust.dataset import Maps
from loadtests.locust.keys import KeyChooser
from loadtests.locust.metering import MeteredClient, RequestMeter
from loadtests.locust.settings import LoadSettings
from shoal import Client


@dataclass
class Session:
    """Task functions take a Session (not a Locust user), so they run without Locust."""

    sdk: Client
    meter: RequestMeter
    settings: LoadSettings
    rng: random.Random
    client: MeteredClient = field(init=False)
    maps: Maps = field(init=False)
    keys: KeyChooser = field(init=False)
    accounts: KeyChooser = field(init=False)
    orders: KeyChooser = field(init=False)
    days: KeyChooser = field(init=False)
    # Keys this user inserted and has not deleted yet, oldest first.
    inserted: deque[str] = field(default_factory=deque)
    # Unique across users, processes and runs, so inserted keys never collide.
    name: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    inserts: int = 0

    def __post_init__(self) -> None:
        self.client = MeteredClient(self.sdk, self.meter)
        self.maps = Maps(self.settings.prefix)
        settings, rng = self.settings, self.rng
        self.keys = KeyChooser.from_settings(settings.keys, settings, rng)
        self.accounts = KeyChooser.from_settings(settings.accounts, settings, rng)
        self.orders = KeyChooser.from_settings(settings.orders, settings, rng)
        self.days = KeyChooser.from_settings(settings.sketch_keys, settings, rng)

    def new_key(self) -> str:
        self.inserts += 1
        return f"ins-{self.name}-{self.inserts:08d}"
