"""What every page and API of the service shares: error pages, health, schema bits."""
