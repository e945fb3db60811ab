"""The measured-quality corpus for suspicious-request detection (see ``samples.py``)."""
