"""Channel adapters: one module per provider kind, all behind `ChannelAdapter`."""
