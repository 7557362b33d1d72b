"""The sandbox: an embedded Kubernetes API server that real kubectl and Helm work against."""
