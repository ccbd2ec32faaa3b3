"""`kinit sweep`: one config trained over a grid of settings and several seeds."""
