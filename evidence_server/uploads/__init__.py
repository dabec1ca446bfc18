"""Resumable uploads over tus 1.0, verified on receipt."""
