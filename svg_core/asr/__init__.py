"""ASR: speech recognisers (``engines``: Whisper, PocketSphinx) and the ASR-then-text ``cascade``."""
