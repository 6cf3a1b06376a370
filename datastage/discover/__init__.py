"""Discovery: column classification, rule proposals and the reference data behind them."""
