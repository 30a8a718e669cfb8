"""The demo: a synthetic market run through a stack."""
