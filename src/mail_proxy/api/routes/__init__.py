"""One router per resource; each handler is thin: check, call the store, shape the answer."""
