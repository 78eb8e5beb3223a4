"""Use cases over the store, jobs, events and audit. No GraphQL types here."""
