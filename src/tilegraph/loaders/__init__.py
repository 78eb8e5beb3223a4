"""DataLoaders, created per request (per event for subscriptions)."""
