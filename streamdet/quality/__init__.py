"""Detection quality on generated scenes whose true boxes are known: AP, false boxes, stability.

The library behind ``python benchmarks/quality.py``:

* ``dataset``: the generated scenes, their ground truth and the dataset of stills and videos;
* ``heldout``: a second, independent scene generator the model never trained on (issue 18);
* ``generators``: the two generators by name (``--generator train|heldout|both``);
* ``analysis``: failures by prompt, object size, background, frame kind and cause; calibration;
* ``metrics``: COCO AP by pycocotools, false boxes per frame, jitter/blink/found on videos;
* ``settings``: the named detector settings it compares (a preset plus overrides each);
* ``evaluate``: one detector per setting over the dataset, measured;
* ``report``: targets, the printed summary, the JSON file; ``tables``: its markdown tables;
* ``cli``: the command line.

pycocotools is optional (``pip install 'streamdet[bench]'``); without it AP raises a one-line
``MissingDependencyError``.
"""
