"""The MQTT adapter: consumes uplink commands, calls the models, publishes events after commit."""
