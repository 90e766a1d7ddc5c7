"""The composition root: wires config, models, broker, bridge and api into processes (`mqim`)."""
