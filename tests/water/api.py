"""The water pipeline's HTTP view: a facility's day, from this worker's table."""

from __future__ import annotations

from typing import Any

from faust.web import View

from app.runtime.faust_app import Governor
from tests.water.agent import WaterPipeline


def register(gov: Governor, water: WaterPipeline) -> None:
    @gov.faust.page("/api/v1/water/{facility_id}")
    class WaterDayView(View):  # type: ignore[misc]
        async def get(self, request: Any, facility_id: str) -> Any:
            state = water.days.get(facility_id)
            if state is None:
                return self.json({"detail": f"no readings of {facility_id}"}, status=404)
            return self.json(state.model_dump(mode="json"))
