"""Stream consumers: Redis Streams and Kafka events written into a view's online store and offline log."""
