"""Redis pub/sub: execution state for subscriptions, fanned out in each API process."""
