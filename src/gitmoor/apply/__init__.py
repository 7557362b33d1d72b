"""Applying rendered objects to a cluster: ordering, inventory, pruning, health."""
