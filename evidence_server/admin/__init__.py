"""Administration: units, users and roles, stations; system administrators everywhere, device
administrators within their unit. Every action is audited."""
