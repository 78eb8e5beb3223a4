"""Test support: the real stack (AWS emulator, Redis, API, worker) and a GraphQL client."""
