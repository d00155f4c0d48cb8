"""The recommender: enumerate feasible deployments, predict their energy and latency, rank them."""
from .search import enumerate_candidates, recommend

__all__ = ["enumerate_candidates", "recommend"]
