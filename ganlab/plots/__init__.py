"""The pictures a GAN researcher looks at, as pure functions, one module per kind of picture.

- ``images``: image batches as uint8 grids (samples, paper Figures 2 and 3), PNG saving.
- ``toy``: 1-D densities with D and D* (paper Figure 1), 2-D samples over the modes.
- ``costs``: each game's generator cost against D(G(z)) (tutorial Figure 16).
- ``parzen``: the Parzen validation curve over sigma.
- ``xy_game``: gradient play on V(x, y) = xy (tutorial exercise §8.2).
- ``samples``: which of these a batch of samples gets, decided by the data (one place).
- ``paper``: the end-of-run paper figures for a trained GAN and its data.
- ``figure``: matplotlib Figures outside pyplot: creating, rendering, saving.

Image grids are ``(3, H, W)`` uint8 CPU tensors; plots are matplotlib ``Figure`` objects on
the Agg canvas, never registered with pyplot, so none is left open and the caller's backend is
never changed. Nothing here knows about Lightning or W&B (see ``ganlab.callbacks``).
"""
