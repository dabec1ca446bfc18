"""Home pages: the work waiting for each person, counted."""
