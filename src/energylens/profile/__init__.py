"""Measurement: GPU energy over named prefill and decode windows, sweeps that resume, and a planner."""
