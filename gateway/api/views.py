"""``GET /api/health`` and ``GET /api/stats``: the bodies of ``/health`` and ``/stats``.

Seed 001's Control UI reads them under /api/ (same origin as its pages). The hub lives on
the server's event loop; ``async_to_sync`` runs the selector there (these views are sync).
"""

from __future__ import annotations

from asgiref.sync import async_to_sync
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from gateway.delivery.hub import get_hub
from gateway.rpc import hello as selectors
from gateway.state import outage


async def _health() -> dict:
    return await selectors.health_report(await get_hub())


async def _stats() -> dict:
    return await selectors.stats_report(await get_hub())


class HealthApi(APIView):
    """Public, like ``/health``: no client details."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(tags=["gateway"], responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        """``{status, version, stats: {uptime, totalNodes, ...}, timestamp}``; 503 degraded."""
        report = async_to_sync(_health)()
        if report["status"] == "healthy":
            return Response(report)
        return outage.logged(Response(report, status=503))


class StatsApi(APIView):
    """Needs credentials, like ``/stats`` (it lists the connected clients)."""

    @extend_schema(tags=["gateway"], responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        """``{gateway: {...}, nodes: {totalNodes, nodes: [presence]}, groups: {...}}``."""
        return Response(async_to_sync(_stats)())
