"""Secrets from secret stores: the Vault/OpenBao provider, ExternalSecret templating and the
Secret an ExternalSecret writes, and the OpenBao dev server of the demo."""
