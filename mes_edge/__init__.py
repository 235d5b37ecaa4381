"""mes-edge: a shop-floor MES edge service (see README.md and DESIGN)."""

__version__ = "0.1.0"
