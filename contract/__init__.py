"""The wire contract, in one place: topics, uplink commands, downlink events, error codes and
the HTTP response shapes. It imports nothing of ours but config: every other layer may use it."""
