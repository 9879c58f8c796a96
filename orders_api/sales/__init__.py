"""The sale's life cycle: open (stock taken from the shop), close (unsold given back),
status, counter rebuild; the live-sale selectors and the sale's pages and APIs."""
