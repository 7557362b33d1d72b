"""The command-line interface, in the spirit of the flux CLI."""
