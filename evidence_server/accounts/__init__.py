"""Units, users, roles and login sessions."""
