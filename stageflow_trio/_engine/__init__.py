"""The private trio kernel both graphs share."""
