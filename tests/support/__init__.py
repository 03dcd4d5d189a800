"""Test harness: generated wheels, loopback package indexes, an emulated lifecycle."""
