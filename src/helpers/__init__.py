"""Helpers for the saliency book."""
