"""perpengine: an event-sourced matching and risk engine for USDⓈ-margined perpetual futures.

The core (engine.core.Engine) is a pure state machine; see README.md for the whole design."""
