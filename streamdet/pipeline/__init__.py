"""The streaming pipeline: sources in, detections and annotated video out (``streamdet run``)."""
