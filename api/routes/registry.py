"""Admin endpoints of the asset registry (being written)."""

from fastapi import APIRouter

router = APIRouter(tags=["registry"])
