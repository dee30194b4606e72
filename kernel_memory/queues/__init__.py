"""Queues between pipeline steps: the port, message encoding, queue names and the Azure adapter.

The Azure adapter is imported from `queues.azure_queue`, so the SDK loads only when it is configured.
"""

from kernel_memory.queues.base import QueueConsumer, QueueMessage, QueueProducer
from kernel_memory.queues.encoding import MAX_MESSAGE_BYTES, decode_message, encode_message
from kernel_memory.queues.factory import build_queue_client
from kernel_memory.queues.names import poison_queue_name, queue_name_for

__all__ = [
    "MAX_MESSAGE_BYTES",
    "QueueConsumer",
    "QueueMessage",
    "QueueProducer",
    "build_queue_client",
    "decode_message",
    "encode_message",
    "poison_queue_name",
    "queue_name_for",
]
