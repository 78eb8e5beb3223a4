"""Object types. Nested fields resolve through loaders; root fields live in resolvers/."""
