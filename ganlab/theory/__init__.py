"""Small, exact models of GAN theory (the NIPS 2016 tutorial's exercises, §8), as pure functions.

- ``xy_game``: gradient play on V(x, y) = xy (exercise §8.2): continuous time orbits, discrete
  simultaneous steps spiral outward, alternating steps stay on an ellipse.
"""
