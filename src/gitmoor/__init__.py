"""gitmoor keeps Kubernetes clusters moored to Git, reading Flux v2's custom resources."""

__version__ = "0.1.0"
