"""UART and the board's register console (configuration before any CS talks to it)."""
