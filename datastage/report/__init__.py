"""The compliance report, its HTML page, refresh history and run records."""
