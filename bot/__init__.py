"""Bebas Cemas: BPJS Ketenagakerjaan BPU registration bot for Bali."""
