"""kinit's built-in plugin pack: the documented custom-initializer and custom-layer patterns."""
