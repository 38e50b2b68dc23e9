"""The Redis protocol and the Redis store's transaction records (compiled; see wire.pyx)."""

from typing import Any

from pointengine.store.records import Transaction

def command(name: bytes, args: list[Any]) -> bytes:
    """``name args...`` as one command of the Redis protocol."""
def bulk_strings(items: list[Any]) -> bytes:
    """Each item (bytes, str or int) as a bulk string of the Redis protocol, in order."""
def ledger_commands(lines: list[bytes], stream: bytes) -> bytes:
    """The ledger's JSON lines as ``XADD stream * field value...`` commands of the Redis
    protocol."""
def transaction_record(tx: Transaction) -> bytes:
    """A transaction as the Redis store's script keeps it: ``amount|refunded|payer`` when it
    earned nothing, else its msgpack array, as ``msgpack.packb`` writes it."""
def hmget(key: bytes, ids: list[str]) -> bytes:
    """``HMGET key id...`` in the Redis protocol."""
