"""Measuring models: metrics on labelled faces (metrics), calibration (calibration), the real-photo
test (robustness, scenes), README tables (report) and recording results in model cards (record).

May import core.pipeline, core.explain, core.models and every wing below them; never training,
video, jobs or the CLI.
"""
