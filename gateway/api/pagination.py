"""Pagination of every list in ``/api/``: ``?limit=&offset=``."""

from rest_framework.pagination import LimitOffsetPagination


class LimitOffset(LimitOffsetPagination):
    """``limit`` defaults to ``PAGE_SIZE`` and is capped, so one request stays bounded."""

    max_limit = 500
