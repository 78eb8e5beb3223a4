"""Plain dataclasses and pure rules. Nothing here does I/O or imports the rest of Tilegraph."""
