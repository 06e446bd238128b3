"""The demo graph's resolvers: root fields and the records upstream answers become.

Fields that cross to another service are declared edges, beside their types
in ``schema.types``; the per-request dataloaders behind them are the runtime's.
"""
