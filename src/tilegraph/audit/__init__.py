"""The audit recorder every feature uses."""
