"""The transactional outbox: the relay that publishes committed events; its wake-up."""
