"""Route modules; each defines ``router = hub.api._routing.Router(tag)``."""
