"""Keeping personal health data as the law asks: key rotation, retention, erasure, the record
of who read what. Commands of ``intake-gateway`` (``keys``, ``retention``, ``erase``,
``audit``) over the stores of ``gateway.store``."""
