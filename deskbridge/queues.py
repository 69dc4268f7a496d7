"""Azure Storage queues: the retry queue, the desk-updates queue and their poison queues.

One :class:`WorkQueue` is a queue and its poison queue. Messages are base64
text, as the Functions queue trigger expects (host.json ``messageEncoding``);
their form is deskbridge.retries' :class:`~deskbridge.retries.QueueKey`. A
retry's delay is the message's initial visibility timeout. A failure is a
:class:`~deskbridge.errors.StorageError`; the queues are created by
:meth:`WorkQueue.ensure` (doctor, the local stack, the infra templates), never
on the way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from deskbridge.errors import StorageError
from deskbridge.retries import QueueKey

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient


@contextmanager
def _storage(what: str, queue: str) -> Iterator[None]:
    """The Queues SDK's failures inside as StorageError (the SDK's error stays the cause)."""
    from azure.core.exceptions import AzureError

    try:
        yield
    except AzureError as exc:
        raise StorageError.from_sdk(exc, what, "queue", queue, "QueueNotFound") from exc


class WorkQueue:
    """One Storage queue and its poison queue."""

    def __init__(self, queue: QueueClient, poison: QueueClient) -> None:
        self._queue = queue
        self._poison = poison
        self.name = queue.queue_name

    def ensure(self) -> list[str]:
        """Create the queue and its poison queue where missing; the names of those created."""
        from azure.core.exceptions import ResourceExistsError

        created = []
        for client in (self._queue, self._poison):
            with _storage(f"creating the queue {client.queue_name}", client.queue_name):
                try:
                    client.create_queue()
                except ResourceExistsError:
                    continue
            created.append(client.queue_name)
        return created

    def schedule(self, key: QueueKey, delay_seconds: int) -> None:
        with _storage("sending a queue message", self.name):
            self._queue.send_message(key.encode(), visibility_timeout=max(0, int(delay_seconds)))

    def to_poison(self, key: QueueKey) -> None:
        with _storage("sending a poison message", self._poison.queue_name):
            self._poison.send_message(key.encode())

    def depth(self) -> tuple[int, int]:
        """Approximate message counts of the queue and its poison queue."""
        with _storage("reading the queue's length", self.name):
            return (
                self._queue.get_queue_properties().approximate_message_count,
                self._poison.get_queue_properties().approximate_message_count,
            )
