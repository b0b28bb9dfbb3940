"""Teamwork: collaborative diffusion with low-rank coordination and adaptation (Sartor & Peers 2025)."""
__version__ = "0.1.0"
