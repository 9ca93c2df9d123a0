"""aeuf: Active UltraFeedback — preference datasets with as few oracle labels as possible."""

__version__ = "0.1.0"
