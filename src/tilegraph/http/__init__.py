"""HTTP and WebSocket plumbing around the GraphQL schema."""
