"""Dataset discovery, validation and the synthetic scene generator (numpy + OpenCV only)."""
