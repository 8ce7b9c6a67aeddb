"""Small, exact models of GAN theory, where the answer is known in closed form.

- ``xy_game``: gradient play on V(x, y) = xy (the NIPS 2016 tutorial's exercise §8.2), as pure
  functions: continuous time orbits, discrete simultaneous steps spiral outward, alternating
  steps stay on an ellipse.
- ``dirac``: the Dirac-GAN of Mescheder et al. (2018), as networks trained by ganlab's own
  costs, regularisers and update rules: which training methods converge.
"""
