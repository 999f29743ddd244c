"""The Autoscaler Central client for Python autoscalers (standard library only)."""

from .client import CentralManagementClient, CentralRequestError, normalize_api_url, to_yaml

__all__ = ["CentralManagementClient", "CentralRequestError", "normalize_api_url", "to_yaml"]
