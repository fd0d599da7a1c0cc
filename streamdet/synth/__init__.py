"""The built-in model that sees: synthetic scenes with ground truth, and the CLIP trained on them.

- ``scenes``: the scene generator (shapes and side-view objects on varied backgrounds) and its
  ground truth; numpy and OpenCV only, used by tests, benchmarks and the demo. Its parts:
  ``vocabulary`` (colours, kinds, sizes, prompt parsing into a ``Query``), ``drawing`` (how each
  kind is drawn and placed) and ``backgrounds``.
- ``data``: detector-like training crops labelled per caption (true, false, ignored).
- ``model``, ``train``, ``evaluate``: the CLIP architecture, its training and its zero-shot
  accuracy; these need torch and transformers (the ``export`` extra).
"""
