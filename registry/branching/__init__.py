"""Branches and merges: the use cases that move refs other than by commit."""
