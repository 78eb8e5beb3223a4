"""Strawberry types, inputs, enums, directives and the Schema."""
