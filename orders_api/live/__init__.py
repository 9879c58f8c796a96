"""Live status: order states and sale boards pushed to websockets (channels)."""
