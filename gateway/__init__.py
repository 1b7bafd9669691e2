"""intake-gateway: a message-driven, multi-channel intake gateway for complaints to public services.

Data flows one way: channel adapter -> normalizers -> publisher -> Kafka -> notifier.
"""

__version__ = "0.1.0"
