"""Tilegraph: a self-hosted BI backend served as a GraphQL API."""
