"""Evaluation: metrics, selection scenarios, experiments and synthetic data for tests."""
