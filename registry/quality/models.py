"""Catalog tables of the quality package (policies, gate results, waivers, pins)."""
