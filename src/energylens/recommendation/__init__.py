"""The recommender: enumerate feasible deployments, predict their energy and latency, rank them."""
from .request import RecommendOptions, RequestError
from .result import Recommendation
from .search import enumerate_candidates, recommend

__all__ = ["Recommendation", "RecommendOptions", "RequestError", "enumerate_candidates", "recommend"]
