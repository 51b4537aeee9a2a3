"""Faust's web layer as the pipelines' HTTP views use it: the one place they meet it.

Views subclass :class:`View` and are routed with ``@gov.faust.page(path)``; the shared
replies, problems, body limits and bearer auth are in :mod:`app.web.http`.
"""

from faust.web import View

__all__ = ["View"]
