"""augkit's version, in one place (the package and every output that records it read it here)."""

__version__ = "0.1.0"
