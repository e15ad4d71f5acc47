"""Delivery to Discord in three parts: the REST client (rest.py), the loop
bridge (bridge.py) and the posting policy (posting.py)."""

from worker.delivery.posting import NONCE_CHARS, Delivery

__all__ = ["NONCE_CHARS", "Delivery"]
