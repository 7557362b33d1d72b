"""The embedded demo: real chart servers on 127.0.0.1 and the example homelab repository."""
