"""Japan Standard Time: the one time zone object of every timestamp the engine holds (see
:func:`pointengine.model.events.in_jst` for why it is one object)."""

from __future__ import annotations

import datetime as dt

JST = dt.timezone(dt.timedelta(hours=9), "JST")
