"""Scripted pick-and-place expert (sim only: it reads ground truth)."""
