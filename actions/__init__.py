"""Use cases: one module per feature. Each checks, writes in one transaction, builds the
typed events of the contract and publishes them after commit, through the publisher and
access-sync interfaces passed in. The HTTP routes and the MQTT ops both call these functions."""
