"""Client for the carmask service: a Python API for notebooks and the `carmask-client` command.

from carmask.client import CarmaskClient
client = CarmaskClient("http://127.0.0.1:8000")
mask = client.mask("car.jpg")            # (H, W) uint8 0/1 at the photo's size
masks = client.masks(["a.jpg", "b.jpg"])  # one /segment/batch request
"""

from carmask.client.api import CarmaskClient, ClientError, ServiceUnavailable

__all__ = ["CarmaskClient", "ClientError", "ServiceUnavailable"]
