"""SIE: sample importance estimation for e-commerce search/click logs."""

__version__ = "0.1.0"
