"""Scenario bags, synchronized frames from bags, and bag replay."""
