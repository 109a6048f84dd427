"""Serving images: in-memory and ImageFolder image sets, what they share, decoding, prefetch."""
