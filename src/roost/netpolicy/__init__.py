"""The one network policy every server roost starts follows (docs/security.md): Host allow-list, Origin check and
JSON content type on state changes, the token wherever one is configured, timeouts for slow clients, connection and
size limits. Base layer: it imports nothing of the capability packages, which all build their servers on it."""

__all__ = ["limits"]
