"""The webhooks page of the Control UI."""
