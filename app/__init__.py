"""Seizure Stats Service: exact statistics of EEG seizure-detection training sets."""

__version__ = "0.1.0"
