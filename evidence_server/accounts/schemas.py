"""How users and units are shown over HTTP (the accounts API and the administration API alike)."""

from __future__ import annotations

from pydantic import BaseModel


class UserOut(BaseModel):
    id: int
    username: str
    display_name: str
    role: str
    unit_id: int
    officer_no: str | None


class UnitOut(BaseModel):
    id: int
    code: str
    name: str
