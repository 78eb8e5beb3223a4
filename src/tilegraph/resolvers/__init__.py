"""Root query, mutation and subscription resolvers: check input, call one service, return types."""
