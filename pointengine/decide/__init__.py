"""Deciding what an event earns: facts, conditions, eligibility, compiled rulesets, the
claims an eligible event makes, the engine that routes and decides, and hot reload. The engine
depends on the store contract only; concrete stores and the lane are chosen where a run is
assembled."""
