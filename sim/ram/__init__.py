"""Benches and a reference model for hdl/ram."""
