"""The controllers: one reconciler per kind, the work queue, and leader election."""
