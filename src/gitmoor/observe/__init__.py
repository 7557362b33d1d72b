"""What the controllers tell the outside world: Kubernetes Events, Prometheus metrics, logs."""
