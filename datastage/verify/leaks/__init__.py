"""The leak check: every loaded value against keyed hashes of the source."""
