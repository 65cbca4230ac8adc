"""Stream consumers: Redis Streams and Kafka events written into a view's online store and offline log.

The public entry point is `roost.features.stream` (`consumer.stream`); the modules here stay importable one by one.
"""

__all__: list[str] = []
