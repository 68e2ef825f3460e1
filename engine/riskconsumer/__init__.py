"""The risk consumer: a reader of the event log with its own projection, which asks the core
to issue margin calls and to liquidate (engine.riskconsumer.consumer); as its own process:
engine.riskconsumer.process."""
from engine.riskconsumer.consumer import RiskConsumer, SequenceGap

__all__ = ["RiskConsumer", "SequenceGap"]
