"""Finding gateways: mDNS announce/browse (mdns.py) and Tailscale peers (tailscale.py)."""
