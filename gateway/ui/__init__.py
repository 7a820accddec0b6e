"""The Control UI: Django templates plus plain JavaScript, served by the gateway itself."""
