"""Detection quality on generated scenes whose true boxes are known: AP, false boxes, stability.

The library behind ``python benchmarks/quality.py``:

* ``dataset``: the generated scenes, their ground truth and the dataset of stills and videos;
* ``metrics``: COCO AP by pycocotools, false boxes per frame, jitter/blink/found on videos;
* ``settings``: the named detector settings it compares (a preset plus overrides each);
* ``evaluate``: one detector per setting over the dataset, measured;
* ``report``: targets, markdown tables, the JSON file;
* ``cli``: the command line.

pycocotools is optional (``pip install 'streamdet[bench]'``); without it AP raises a one-line
``MissingDependencyError``.
"""
